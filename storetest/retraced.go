package storetest

import (
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/retraced"
	"github.com/google/go-cmp/cmp"
)

// RunRetraced runs the suite for engines that keep the Retraced viewer
// descriptors and enterprise tokens (retraced.State), so that with several
// nodes over one database a token made on one works on all. The stores f
// opens must implement it.
func RunRetraced(t *testing.T, f Factory) {
	t.Run("RetracedViewers", func(t *testing.T) { testRetracedViewers(t, f) })
	t.Run("RetracedEnterprise", func(t *testing.T) { testRetracedEnterprise(t, f) })
	t.Run("RetracedReopen", func(t *testing.T) { testRetracedReopen(t, f) })
}

func openRetraced(t *testing.T, f Factory) (cairn.Store, retraced.State, Opener) {
	t.Helper()
	s, o := open(t, f)
	rs, ok := s.(retraced.State)
	if !ok {
		t.Fatalf("%T does not implement retraced.State", s)
	}
	setup(t, s)
	if _, err := s.CreateOrg(t.Context(), "other"); err != nil {
		t.Fatal(err)
	}
	return s, rs, o
}

// now is a recent time at the stores' microsecond precision.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func viewer(id, org, group, actor string, created time.Time) *retraced.ViewerDescriptor {
	return &retraced.ViewerDescriptor{ID: id, Org: org, Context: "app", GroupID: group, ActorID: actor,
		TargetID: "doc-1", IsAdmin: true, ViewLogAction: "audit.log.view", Created: created}
}

func testRetracedViewers(t *testing.T, f Factory) {
	_, rs, _ := openRetraced(t, f)
	ctx := t.Context()
	v1 := viewer("0123456789abcdef0123456789abcdef", "acme", "g1", "alice", now())
	v2 := viewer("11111111111111111111111111111111", "acme", "g1", "alice", now())
	v3 := viewer("22222222222222222222222222222222", "acme", "g1", "bob", now())
	v4 := viewer("33333333333333333333333333333333", "other", "g1", "alice", now())
	v4.TargetID, v4.IsAdmin = "", false
	for _, v := range []*retraced.ViewerDescriptor{v1, v2, v3, v4} {
		if err := rs.PutViewer(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []*retraced.ViewerDescriptor{v1, v4} {
		got, err := rs.GetViewer(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("viewer read back (-put +got):\n%s", d)
		}
	}
	_, err := rs.GetViewer(ctx, "44444444444444444444444444444444")
	wantCode(t, "get a missing viewer", err, cairn.ENotFound)

	// A put replaces.
	v1b := *v1
	v1b.ViewLogAction = "custom.view"
	if err := rs.PutViewer(ctx, &v1b); err != nil {
		t.Fatal(err)
	}
	if got, err := rs.GetViewer(ctx, v1.ID); err != nil || got.ViewLogAction != "custom.view" {
		t.Fatalf("after a second put: %+v, %v", got, err)
	}

	// A descriptor older than ViewerTTL is gone.
	old := viewer("55555555555555555555555555555555", "acme", "g2", "carol", now().Add(-retraced.ViewerTTL-time.Minute))
	if err := rs.PutViewer(ctx, old); err != nil {
		t.Fatal(err)
	}
	_, err = rs.GetViewer(ctx, old.ID)
	wantCode(t, "get an expired viewer", err, cairn.ENotFound)

	// Deleting alice's sessions in acme/g1 leaves bob's and other org's.
	if err := rs.DeleteViewers(ctx, "acme", "g1", "alice"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{v1.ID, v2.ID} {
		_, err := rs.GetViewer(ctx, id)
		wantCode(t, "get a deleted viewer", err, cairn.ENotFound)
	}
	for _, id := range []string{v3.ID, v4.ID} {
		if _, err := rs.GetViewer(ctx, id); err != nil {
			t.Fatalf("viewer %s lost with another actor's or org's: %v", id, err)
		}
	}
	if err := rs.DeleteViewers(ctx, "acme", "g1", "nobody"); err != nil {
		t.Fatalf("deleting no viewers: %v", err)
	}
}

func enterprise(token, org, group string, created time.Time) *retraced.EnterpriseToken {
	return &retraced.EnterpriseToken{Token: token, Org: org, Context: "app", GroupID: group,
		DisplayName: "SIEM export", ViewLogAction: "audit.log.view", Created: created}
}

func testRetracedEnterprise(t *testing.T, f Factory) {
	_, rs, _ := openRetraced(t, f)
	ctx := t.Context()
	t0 := now().Add(-time.Hour)
	e2 := enterprise("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "acme", "g1", t0.Add(time.Second))
	e1 := enterprise("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "acme", "g1", t0)
	e3 := enterprise("cccccccccccccccccccccccccccccccc", "acme", "g2", t0)
	e4 := enterprise("dddddddddddddddddddddddddddddddd", "other", "g1", t0)
	for _, e := range []*retraced.EnterpriseToken{e2, e1, e3, e4} {
		if err := rs.PutEnterprise(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := rs.GetEnterprise(ctx, e1.Token)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(e1, got); d != "" {
		t.Errorf("token read back (-put +got):\n%s", d)
	}
	_, err = rs.GetEnterprise(ctx, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab")
	wantCode(t, "get a missing token", err, cairn.ENotFound)
	_, err = rs.GetEnterprise(ctx, "")
	wantCode(t, "get the empty token", err, cairn.ENotFound)

	list, err := rs.ListEnterprise(ctx, "acme", "g1")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]*retraced.EnterpriseToken{e1, e2}, list); d != "" {
		t.Errorf("acme/g1 tokens, oldest first (-want +got):\n%s", d)
	}
	if list, err := rs.ListEnterprise(ctx, "acme", "g9"); err != nil || len(list) != 0 {
		t.Errorf("a group with no tokens: %v, %v", list, err)
	}

	// An update keeps the token and replaces the rest.
	e1b := *e1
	e1b.DisplayName = "renamed"
	if err := rs.PutEnterprise(ctx, &e1b); err != nil {
		t.Fatal(err)
	}
	if got, err := rs.GetEnterprise(ctx, e1.Token); err != nil || got.DisplayName != "renamed" {
		t.Fatalf("after an update: %+v, %v", got, err)
	}

	// A delete must name the token's own org and group.
	wantCode(t, "delete through another org", rs.DeleteEnterprise(ctx, "other", "g1", e1.Token), cairn.ENotFound)
	wantCode(t, "delete through another group", rs.DeleteEnterprise(ctx, "acme", "g2", e1.Token), cairn.ENotFound)
	wantCode(t, "delete a missing token", rs.DeleteEnterprise(ctx, "acme", "g1", "ffffffffffffffffffffffffffffffff"), cairn.ENotFound)
	if err := rs.DeleteEnterprise(ctx, "acme", "g1", e1.Token); err != nil {
		t.Fatal(err)
	}
	_, err = rs.GetEnterprise(ctx, e1.Token)
	wantCode(t, "get a deleted token", err, cairn.ENotFound)
	for _, e := range []*retraced.EnterpriseToken{e2, e3, e4} {
		if _, err := rs.GetEnterprise(ctx, e.Token); err != nil {
			t.Fatalf("token of %s/%s lost: %v", e.Org, e.GroupID, err)
		}
	}
}

func testRetracedReopen(t *testing.T, f Factory) {
	o := f(t)
	s := o()
	setup(t, s)
	ctx := t.Context()
	rs, ok := s.(retraced.State)
	if !ok {
		s.Close()
		t.Fatalf("%T does not implement retraced.State", s)
	}
	v := viewer("0123456789abcdef0123456789abcdef", "acme", "g1", "alice", now())
	e := enterprise("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "acme", "g1", now())
	if err := rs.PutViewer(ctx, v); err != nil {
		t.Fatal(err)
	}
	if err := rs.PutEnterprise(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := o()
	t.Cleanup(func() { s2.Close() })
	rs = s2.(retraced.State)
	if _, err := rs.GetViewer(ctx, v.ID); err != nil {
		t.Fatalf("viewer after reopen: %v", err)
	}
	if _, err := rs.GetEnterprise(ctx, e.Token); err != nil {
		t.Fatalf("enterprise token after reopen: %v", err)
	}
}

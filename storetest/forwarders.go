package storetest

import (
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/google/go-cmp/cmp"
)

// RunForwarders runs the suite for engines that also implement
// cairn.ForwarderStore. The stores f opens must implement it.
func RunForwarders(t *testing.T, f Factory) {
	t.Run("ForwarderCRUD", func(t *testing.T) { testForwarderCRUD(t, f) })
	t.Run("ForwarderState", func(t *testing.T) { testForwarderState(t, f) })
	t.Run("Cursors", func(t *testing.T) { testCursors(t, f) })
	t.Run("CursorsSurviveReopen", func(t *testing.T) { testCursorsReopen(t, f) })
	t.Run("ForwarderOrgIsolation", func(t *testing.T) { testForwarderIsolation(t, f) })
}

func openForwarders(t *testing.T, f Factory) (cairn.Store, cairn.ForwarderStore, Opener) {
	t.Helper()
	s, o := open(t, f)
	fs, ok := s.(cairn.ForwarderStore)
	if !ok {
		t.Fatalf("%T does not implement cairn.ForwarderStore", s)
	}
	setup(t, s)
	return s, fs, o
}

// NewForwarder returns a valid-looking forwarder for store tests.
func NewForwarder(org, name string) *cairn.Forwarder {
	at := time.UnixMicro(1_700_000_000_000_000).UTC()
	return &cairn.Forwarder{
		Org: org, Name: name, Contexts: []string{"app"}, ActionFilter: "user.*",
		Sink: cairn.SinkConfig{Type: "webhook", Settings: map[string]any{
			"uri": "https://siem.example/hook", "token": "s3cret", "method": "POST",
		}},
		Format:  cairn.FormatJSON,
		Batch:   cairn.BatchPolicy{MaxEvents: 100, MaxBytes: 1 << 20, MaxDelay: 250 * time.Millisecond},
		Retry:   cairn.RetryPolicy{MaxAttempts: 5, MinBackoff: time.Second, MaxBackoff: time.Minute},
		Enabled: true, CreatedAt: at, UpdatedAt: at,
	}
}

func testForwarderCRUD(t *testing.T, f Factory) {
	_, fs, _ := openForwarders(t, f)
	ctx := t.Context()
	want := NewForwarder("acme", "siem")
	if err := fs.CreateForwarder(ctx, want); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "create a duplicate", fs.CreateForwarder(ctx, NewForwarder("acme", "siem")), cairn.EConflict)
	wantCode(t, "create in a missing org", fs.CreateForwarder(ctx, NewForwarder("nope", "siem")), cairn.ENotFound)
	got, err := fs.GetForwarder(ctx, "acme", "siem")
	if err != nil {
		t.Fatal(err)
	}
	// Secrets are stored as given: the dispatcher needs them.
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("round trip (-want +got):\n%s", d)
	}
	_, err = fs.GetForwarder(ctx, "acme", "nope")
	wantCode(t, "get a missing forwarder", err, cairn.ENotFound)

	if err := fs.CreateForwarder(ctx, NewForwarder("acme", "archive")); err != nil {
		t.Fatal(err)
	}
	list, err := fs.ListForwarders(ctx, "acme")
	if err != nil || len(list) != 2 || list[0].Name != "archive" || list[1].Name != "siem" {
		t.Fatalf("list = %v, %v; want archive, siem", names(list), err)
	}
	_, err = fs.ListForwarders(ctx, "nope")
	wantCode(t, "list a missing org", err, cairn.ENotFound)

	upd := *got
	upd.Enabled = false
	upd.Format = cairn.FormatOCSF
	upd.UpdatedAt = got.UpdatedAt.Add(time.Minute)
	if err := fs.UpdateForwarder(ctx, &upd); err != nil {
		t.Fatal(err)
	}
	got, err = fs.GetForwarder(ctx, "acme", "siem")
	if err != nil || got.Enabled || got.Format != cairn.FormatOCSF || !got.UpdatedAt.Equal(upd.UpdatedAt) || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("after update = %+v, %v", got, err)
	}
	missing := *got
	missing.Name = "nope"
	wantCode(t, "update a missing forwarder", fs.UpdateForwarder(ctx, &missing), cairn.ENotFound)

	if err := fs.SetCursor(ctx, "acme", "siem", "app", 7); err != nil {
		t.Fatal(err)
	}
	if err := fs.DeleteForwarder(ctx, "acme", "siem"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "delete twice", fs.DeleteForwarder(ctx, "acme", "siem"), cairn.ENotFound)
	_, err = fs.GetForwarder(ctx, "acme", "siem")
	wantCode(t, "get a deleted forwarder", err, cairn.ENotFound)
	// A forwarder created again under the same name starts from nothing.
	if err := fs.CreateForwarder(ctx, NewForwarder("acme", "siem")); err != nil {
		t.Fatal(err)
	}
	if cs, err := fs.Cursors(ctx, "acme", "siem"); err != nil || len(cs) != 0 {
		t.Fatalf("cursors of a re-created forwarder = %v, %v; want none", cs, err)
	}
	all, err := fs.AllForwarders(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("all forwarders = %v, %v", names(all), err)
	}
}

func names(fs []*cairn.Forwarder) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Org+"/"+f.Name)
	}
	return out
}

func testForwarderState(t *testing.T, f Factory) {
	_, fs, _ := openForwarders(t, f)
	ctx := t.Context()
	if err := fs.CreateForwarder(ctx, NewForwarder("acme", "siem")); err != nil {
		t.Fatal(err)
	}
	st, err := fs.ForwarderState(ctx, "acme", "siem")
	if err != nil || st != (cairn.ForwarderState{}) {
		t.Fatalf("new state = %+v, %v; want zero", st, err)
	}
	want := cairn.ForwarderState{Parked: true, Attempts: 5, LastSuccess: time.UnixMicro(1_000_000).UTC(),
		LastErrorAt: time.UnixMicro(2_000_000).UTC(), LastErrorCode: cairn.EUnavailable, LastError: "HTTP 503"}
	if err := fs.SetForwarderState(ctx, "acme", "siem", want); err != nil {
		t.Fatal(err)
	}
	got, err := fs.ForwarderState(ctx, "acme", "siem")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("state (-want +got):\n%s", d)
	}
	// Updating the configuration keeps the state.
	fw, _ := fs.GetForwarder(ctx, "acme", "siem")
	if err := fs.UpdateForwarder(ctx, fw); err != nil {
		t.Fatal(err)
	}
	if got, _ := fs.ForwarderState(ctx, "acme", "siem"); got != want {
		t.Fatalf("state after a config update = %+v, want %+v", got, want)
	}
	wantCode(t, "state of a missing forwarder", fs.SetForwarderState(ctx, "acme", "nope", want), cairn.ENotFound)
	_, err = fs.ForwarderState(ctx, "acme", "nope")
	wantCode(t, "read state of a missing forwarder", err, cairn.ENotFound)
}

func testCursors(t *testing.T, f Factory) {
	s, fs, _ := openForwarders(t, f)
	ctx := t.Context()
	if _, err := s.CreateContext(ctx, &cairn.Context{Org: "acme", Name: "billing"}); err != nil {
		t.Fatal(err)
	}
	if err := fs.CreateForwarder(ctx, NewForwarder("acme", "siem")); err != nil {
		t.Fatal(err)
	}
	if err := fs.SetForwarderState(ctx, "acme", "siem", cairn.ForwarderState{Attempts: 3, LastErrorCode: cairn.EUnavailable}); err != nil {
		t.Fatal(err)
	}
	at := time.UnixMicro(5_000_000).UTC()
	// A context never delivered from is at 0.
	if err := fs.AdvanceCursor(ctx, "acme", "siem", "app", 0, 10, at); err != nil {
		t.Fatal(err)
	}
	st, _ := fs.ForwarderState(ctx, "acme", "siem")
	if st.Attempts != 0 || !st.LastSuccess.Equal(at) || st.LastErrorCode != cairn.EUnavailable {
		t.Fatalf("state after an advance = %+v; want attempts reset, last success set, last error kept", st)
	}
	// Compare-and-set: a stale from changes nothing.
	wantCode(t, "advance from a stale cursor", fs.AdvanceCursor(ctx, "acme", "siem", "app", 0, 20, at), cairn.EConflict)
	wantCode(t, "advance backwards", fs.AdvanceCursor(ctx, "acme", "siem", "app", 10, 5, at), cairn.EInvalid)
	if err := fs.AdvanceCursor(ctx, "acme", "siem", "app", 10, 25, at); err != nil {
		t.Fatal(err)
	}
	if err := fs.AdvanceCursor(ctx, "acme", "siem", "billing", 0, 3, at); err != nil {
		t.Fatal(err)
	}
	want := []cairn.ForwarderCursor{{Context: "app", Next: 25}, {Context: "billing", Next: 3}}
	got, err := fs.Cursors(ctx, "acme", "siem")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("cursors (-want +got):\n%s", d)
	}
	// Replay moves a cursor anywhere, backwards included.
	if err := fs.SetCursor(ctx, "acme", "siem", "app", 2); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "advance after a replay from the old position", fs.AdvanceCursor(ctx, "acme", "siem", "app", 25, 30, at), cairn.EConflict)
	if err := fs.AdvanceCursor(ctx, "acme", "siem", "app", 2, 4, at); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "negative cursor", fs.SetCursor(ctx, "acme", "siem", "app", -1), cairn.EInvalid)
	wantCode(t, "cursor on a missing context", fs.SetCursor(ctx, "acme", "siem", "nope", 1), cairn.ENotFound)
	wantCode(t, "advance on a missing context", fs.AdvanceCursor(ctx, "acme", "siem", "nope", 0, 1, at), cairn.ENotFound)
	wantCode(t, "cursor of a missing forwarder", fs.SetCursor(ctx, "acme", "nope", "app", 1), cairn.ENotFound)
	wantCode(t, "advance a missing forwarder", fs.AdvanceCursor(ctx, "acme", "nope", "app", 0, 1, at), cairn.ENotFound)
	_, err = fs.Cursors(ctx, "acme", "nope")
	wantCode(t, "cursors of a missing forwarder", err, cairn.ENotFound)
}

func testCursorsReopen(t *testing.T, f Factory) {
	o := f(t)
	s := o()
	setup(t, s)
	ctx := t.Context()
	fs, ok := s.(cairn.ForwarderStore)
	if !ok {
		s.Close()
		t.Fatalf("%T does not implement cairn.ForwarderStore", s)
	}
	if err := fs.CreateForwarder(ctx, NewForwarder("acme", "siem")); err != nil {
		t.Fatal(err)
	}
	if err := fs.AdvanceCursor(ctx, "acme", "siem", "app", 0, 42, time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := o()
	t.Cleanup(func() { s2.Close() })
	got, err := s2.(cairn.ForwarderStore).Cursors(ctx, "acme", "siem")
	if err != nil || len(got) != 1 || got[0].Next != 42 {
		t.Fatalf("cursors after reopen = %v, %v; want app at 42", got, err)
	}
}

func testForwarderIsolation(t *testing.T, f Factory) {
	s, fs, _ := openForwarders(t, f)
	ctx := t.Context()
	if _, err := s.CreateOrg(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateContext(ctx, &cairn.Context{Org: "other", Name: "app"}); err != nil {
		t.Fatal(err)
	}
	if err := fs.CreateForwarder(ctx, NewForwarder("acme", "siem")); err != nil {
		t.Fatal(err)
	}
	if err := fs.CreateForwarder(ctx, NewForwarder("other", "siem")); err != nil {
		t.Fatal(err)
	}
	if err := fs.AdvanceCursor(ctx, "acme", "siem", "app", 0, 9, time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	if cs, err := fs.Cursors(ctx, "other", "siem"); err != nil || len(cs) != 0 {
		t.Fatalf("other org's cursors = %v, %v; want none", cs, err)
	}
	if err := fs.DeleteForwarder(ctx, "other", "siem"); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.GetForwarder(ctx, "acme", "siem"); err != nil {
		t.Fatalf("deleting another org's forwarder removed this one: %v", err)
	}
	if list, err := fs.ListForwarders(ctx, "other"); err != nil || len(list) != 0 {
		t.Fatalf("other org's forwarders = %v, %v", names(list), err)
	}
}

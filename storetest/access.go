package storetest

import (
	"crypto/sha256"
	"slices"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/google/uuid"
)

// RunAccess runs the suite for engines that also implement
// cairn.AccessStore. The stores f opens must implement it.
func RunAccess(t *testing.T, f Factory) {
	t.Run("Principals", func(t *testing.T) { testPrincipals(t, f) })
	t.Run("Groups", func(t *testing.T) { testGroups(t, f) })
	t.Run("Policies", func(t *testing.T) { testPolicies(t, f) })
	t.Run("PrincipalKeys", func(t *testing.T) { testPrincipalKeys(t, f) })
	t.Run("DeletePrincipal", func(t *testing.T) { testDeletePrincipal(t, f) })
	t.Run("AccessIsolation", func(t *testing.T) { testAccessIsolation(t, f) })
}

func openAccess(t *testing.T, f Factory) (cairn.Store, cairn.AccessStore) {
	t.Helper()
	s, _ := open(t, f)
	as, ok := s.(cairn.AccessStore)
	if !ok {
		t.Fatalf("%T does not implement cairn.AccessStore", s)
	}
	setup(t, s)
	return s, as
}

func newPrincipal(t *testing.T, as cairn.AccessStore, org, kind, name string) *cairn.Principal {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	p := &cairn.Principal{ID: uuid.Must(uuid.NewV7()).String(), Org: org, Kind: kind, Name: name, CreatedAt: now, UpdatedAt: now}
	if kind == cairn.PrincipalUser {
		p.Email, p.PasswordHash = name+"@example.com", "$argon2id$test"
	}
	if err := as.CreatePrincipal(t.Context(), p); err != nil {
		t.Fatalf("CreatePrincipal %s/%s: %v", kind, name, err)
	}
	return p
}

func testPrincipals(t *testing.T, f Factory) {
	_, as := openAccess(t, f)
	ctx := t.Context()
	ann := newPrincipal(t, as, "acme", cairn.PrincipalUser, "ann")
	newPrincipal(t, as, "acme", cairn.PrincipalServiceAccount, "ci")
	newPrincipal(t, as, "acme", cairn.PrincipalServiceAccount, "ann") // names are per kind
	wantCode(t, "duplicate", as.CreatePrincipal(ctx, &cairn.Principal{ID: "x", Org: "acme", Kind: cairn.PrincipalUser, Name: "ann"}), cairn.EConflict)
	wantCode(t, "bad kind", as.CreatePrincipal(ctx, &cairn.Principal{ID: "y", Org: "acme", Kind: "robot", Name: "r"}), cairn.EInvalid)
	wantCode(t, "missing org", as.CreatePrincipal(ctx, &cairn.Principal{ID: "z", Org: "nope", Kind: cairn.PrincipalUser, Name: "r"}), cairn.ENotFound)

	got, err := as.GetPrincipal(ctx, "acme", cairn.PrincipalUser, "ann")
	if err != nil || got.ID != ann.ID || got.PasswordHash != ann.PasswordHash || got.Email != ann.Email || !got.CreatedAt.Equal(ann.CreatedAt) {
		t.Fatalf("GetPrincipal = %+v, %v", got, err)
	}
	if byID, err := as.GetPrincipalByID(ctx, ann.ID); err != nil || byID.Org != "acme" || byID.Name != "ann" {
		t.Fatalf("GetPrincipalByID = %+v, %v", byID, err)
	}
	_, err = as.GetPrincipal(ctx, "acme", cairn.PrincipalUser, "bob")
	wantCode(t, "missing principal", err, cairn.ENotFound)
	_, err = as.GetPrincipalByID(ctx, "nope")
	wantCode(t, "missing id", err, cairn.ENotFound)

	all, err := as.ListPrincipals(ctx, "acme", "")
	if err != nil || len(all) != 3 || all[0].Kind != cairn.PrincipalServiceAccount || all[2].Kind != cairn.PrincipalUser {
		t.Fatalf("ListPrincipals all = %v, %v", all, err)
	}
	sas, err := as.ListPrincipals(ctx, "acme", cairn.PrincipalServiceAccount)
	if err != nil || len(sas) != 2 || sas[0].Name != "ann" || sas[1].Name != "ci" {
		t.Fatalf("ListPrincipals serviceaccount = %v, %v", sas, err)
	}

	desc, hash, off := "the auditor", "$argon2id$new", true
	up, err := as.UpdatePrincipal(ctx, "acme", cairn.PrincipalUser, "ann", cairn.PrincipalUpdate{Description: &desc, PasswordHash: &hash, Disabled: &off})
	if err != nil || up.Description != desc || up.PasswordHash != hash || !up.Disabled || up.Email != ann.Email {
		t.Fatalf("UpdatePrincipal = %+v, %v", up, err)
	}
	got, _ = as.GetPrincipal(ctx, "acme", cairn.PrincipalUser, "ann")
	if got.PasswordHash != hash || !got.Disabled {
		t.Fatalf("update not stored: %+v", got)
	}
	_, err = as.UpdatePrincipal(ctx, "acme", cairn.PrincipalUser, "bob", cairn.PrincipalUpdate{})
	wantCode(t, "update missing", err, cairn.ENotFound)
}

func testGroups(t *testing.T, f Factory) {
	_, as := openAccess(t, f)
	ctx := t.Context()
	newPrincipal(t, as, "acme", cairn.PrincipalGroup, "auditors")
	newPrincipal(t, as, "acme", cairn.PrincipalGroup, "admins")
	newPrincipal(t, as, "acme", cairn.PrincipalUser, "ann")
	newPrincipal(t, as, "acme", cairn.PrincipalIdentity, "billing")
	for _, m := range []string{"user/ann", "identity/billing", "user/ann"} {
		if err := as.AddGroupMember(ctx, "acme", "auditors", m); err != nil {
			t.Fatalf("AddGroupMember %s: %v", m, err)
		}
	}
	if err := as.AddGroupMember(ctx, "acme", "admins", "user/ann"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "nested group", as.AddGroupMember(ctx, "acme", "auditors", "group/admins"), cairn.EInvalid)
	wantCode(t, "bad ref", as.AddGroupMember(ctx, "acme", "auditors", "ann"), cairn.EInvalid)
	wantCode(t, "missing member", as.AddGroupMember(ctx, "acme", "auditors", "user/bob"), cairn.ENotFound)
	wantCode(t, "missing group", as.AddGroupMember(ctx, "acme", "nope", "user/ann"), cairn.ENotFound)

	members, err := as.GroupMembers(ctx, "acme", "auditors")
	if err != nil || !slices.Equal(members, []string{"identity/billing", "user/ann"}) {
		t.Fatalf("GroupMembers = %v, %v", members, err)
	}
	groups, err := as.GroupsOf(ctx, "acme", "user/ann")
	if err != nil || !slices.Equal(groups, []string{"admins", "auditors"}) {
		t.Fatalf("GroupsOf = %v, %v", groups, err)
	}
	if err := as.RemoveGroupMember(ctx, "acme", "auditors", "user/ann"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "remove twice", as.RemoveGroupMember(ctx, "acme", "auditors", "user/ann"), cairn.ENotFound)
	if groups, _ := as.GroupsOf(ctx, "acme", "user/ann"); !slices.Equal(groups, []string{"admins"}) {
		t.Fatalf("GroupsOf after removal = %v", groups)
	}
}

func testPolicies(t *testing.T, f Factory) {
	_, as := openAccess(t, f)
	ctx := t.Context()
	p := &cairn.Policy{Org: "acme", Name: "readers", Description: "read app", Context: "app", Bindings: []cairn.Binding{
		{Permissions: []string{"readAudit"}, Principals: []string{"user/ann", "group/auditors"}, GroupPrefixes: []string{"acme/finance"}},
		{Permissions: []string{"view", "writeAudit"}, Principals: []string{"serviceaccount/ci"}},
	}}
	created, err := as.PutPolicy(ctx, p)
	if err != nil || created.CreatedAt.IsZero() {
		t.Fatalf("PutPolicy = %+v, %v", created, err)
	}
	got, err := as.GetPolicy(ctx, "acme", "readers")
	if err != nil || got.Context != "app" || len(got.Bindings) != 2 || !slices.Equal(got.Bindings[0].GroupPrefixes, []string{"acme/finance"}) ||
		!slices.Equal(got.Bindings[1].Principals, []string{"serviceaccount/ci"}) {
		t.Fatalf("GetPolicy = %+v, %v", got, err)
	}
	time.Sleep(2 * time.Millisecond)
	p2 := *p
	p2.Context = cairn.AllContexts
	p2.Bindings = p.Bindings[:1]
	replaced, err := as.PutPolicy(ctx, &p2)
	if err != nil || !replaced.CreatedAt.Equal(created.CreatedAt) || !replaced.UpdatedAt.After(created.UpdatedAt) {
		t.Fatalf("replace = %+v, %v (created %v)", replaced, err, created.CreatedAt)
	}
	if _, err := as.PutPolicy(ctx, &cairn.Policy{Org: "acme", Name: "another", Context: "app"}); err != nil {
		t.Fatal(err)
	}
	list, err := as.ListPolicies(ctx, "acme")
	if err != nil || len(list) != 2 || list[0].Name != "another" || list[1].Context != cairn.AllContexts || len(list[1].Bindings) != 1 {
		t.Fatalf("ListPolicies = %+v, %v", list, err)
	}
	if err := as.DeletePolicy(ctx, "acme", "another"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "delete twice", as.DeletePolicy(ctx, "acme", "another"), cairn.ENotFound)
	_, err = as.GetPolicy(ctx, "acme", "another")
	wantCode(t, "get deleted", err, cairn.ENotFound)
}

func testPrincipalKeys(t *testing.T, f Factory) {
	s, as := openAccess(t, f)
	ctx := t.Context()
	ci := newPrincipal(t, as, "acme", cairn.PrincipalServiceAccount, "ci")
	now := time.Now().UTC().Truncate(time.Microsecond)
	mk := func(id, secret, principal, kind string, at time.Time) *cairn.APIKey {
		k := &cairn.APIKey{ID: id, Org: "acme", Name: id, Prefix: "cairn_" + id, Hash: sha256.Sum256([]byte(secret)),
			CreatedAt: at, ExpiresAt: at.Add(time.Hour), PrincipalID: principal, Kind: kind}
		if err := s.CreateAPIKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		return k
	}
	mk("k1", "s1", ci.ID, cairn.KeyKindAPI, now)
	mk("k2", "s2", ci.ID, "", now.Add(time.Second))
	mk("boot", "s3", "", "", now.Add(2*time.Second))
	got, err := s.LookupAPIKey(ctx, sha256.Sum256([]byte("s1")))
	if err != nil || got.PrincipalID != ci.ID || got.Kind != cairn.KeyKindAPI || !got.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("LookupAPIKey = %+v, %v", got, err)
	}
	if got, _ := s.LookupAPIKey(ctx, sha256.Sum256([]byte("s2"))); got.Kind != cairn.KeyKindAPI {
		t.Fatalf("default kind = %q", got.Kind)
	}
	keys, err := as.ListAPIKeys(ctx, "acme", ci.ID)
	if err != nil || len(keys) != 2 || keys[0].ID != "k2" || keys[1].ID != "k1" {
		t.Fatalf("ListAPIKeys(ci) = %v, %v", keys, err)
	}
	if all, _ := as.ListAPIKeys(ctx, "acme", ""); len(all) != 3 || all[0].ID != "boot" {
		t.Fatalf("ListAPIKeys(all) = %v", all)
	}
	rev, err := as.RevokeAPIKey(ctx, "acme", "k1", now.Add(time.Minute))
	if err != nil || !rev.RevokedAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("RevokeAPIKey = %+v, %v", rev, err)
	}
	rev, _ = as.RevokeAPIKey(ctx, "acme", "k1", now.Add(time.Hour))
	if !rev.RevokedAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("second revoke moved the time to %v", rev.RevokedAt)
	}
	if got, _ := s.LookupAPIKey(ctx, sha256.Sum256([]byte("s1"))); got.RevokedAt.IsZero() {
		t.Fatal("revoked key looks active")
	}
	_, err = as.RevokeAPIKey(ctx, "acme", "nope", now)
	wantCode(t, "revoke missing", err, cairn.ENotFound)
}

func testDeletePrincipal(t *testing.T, f Factory) {
	s, as := openAccess(t, f)
	ctx := t.Context()
	ann := newPrincipal(t, as, "acme", cairn.PrincipalUser, "ann")
	newPrincipal(t, as, "acme", cairn.PrincipalGroup, "auditors")
	if err := as.AddGroupMember(ctx, "acme", "auditors", "user/ann"); err != nil {
		t.Fatal(err)
	}
	if _, err := as.PutPolicy(ctx, &cairn.Policy{Org: "acme", Name: "p", Context: "app", Bindings: []cairn.Binding{
		{Permissions: []string{"view"}, Principals: []string{"user/ann", "group/auditors"}}}}); err != nil {
		t.Fatal(err)
	}
	k := &cairn.APIKey{ID: "sess", Org: "acme", Name: "login", Prefix: "cairn_x", Hash: sha256.Sum256([]byte("sess")),
		CreatedAt: time.Now(), PrincipalID: ann.ID, Kind: cairn.KeyKindSession}
	if err := s.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := as.DeletePrincipal(ctx, "acme", cairn.PrincipalUser, "ann", now); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "delete twice", as.DeletePrincipal(ctx, "acme", cairn.PrincipalUser, "ann", now), cairn.ENotFound)
	if m, _ := as.GroupMembers(ctx, "acme", "auditors"); len(m) != 0 {
		t.Fatalf("members after delete = %v", m)
	}
	p, _ := as.GetPolicy(ctx, "acme", "p")
	if !slices.Equal(p.Bindings[0].Principals, []string{"group/auditors"}) {
		t.Fatalf("binding after delete = %v", p.Bindings[0].Principals)
	}
	got, err := s.LookupAPIKey(ctx, k.Hash)
	if err != nil || !got.RevokedAt.Equal(now) {
		t.Fatalf("key of a deleted principal = %+v, %v; want revoked", got, err)
	}
	// A new principal of the same name inherits nothing.
	newPrincipal(t, as, "acme", cairn.PrincipalUser, "ann")
	if g, _ := as.GroupsOf(ctx, "acme", "user/ann"); len(g) != 0 {
		t.Fatalf("new ann inherited groups %v", g)
	}
}

func testAccessIsolation(t *testing.T, f Factory) {
	s, as := openAccess(t, f)
	ctx := t.Context()
	if _, err := s.CreateOrg(ctx, "rival"); err != nil {
		t.Fatal(err)
	}
	ann := newPrincipal(t, as, "acme", cairn.PrincipalUser, "ann")
	newPrincipal(t, as, "acme", cairn.PrincipalGroup, "g")
	newPrincipal(t, as, "rival", cairn.PrincipalGroup, "g")
	if _, err := as.PutPolicy(ctx, &cairn.Policy{Org: "acme", Name: "p", Context: "*"}); err != nil {
		t.Fatal(err)
	}
	k := &cairn.APIKey{ID: "k", Org: "acme", Name: "k", Prefix: "cairn_k", Hash: sha256.Sum256([]byte("k")), CreatedAt: time.Now(), PrincipalID: ann.ID}
	if err := s.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	_, err := as.GetPrincipal(ctx, "rival", cairn.PrincipalUser, "ann")
	wantCode(t, "cross-org principal", err, cairn.ENotFound)
	if l, _ := as.ListPrincipals(ctx, "rival", ""); len(l) != 1 {
		t.Fatalf("rival lists %d principals, want its own group", len(l))
	}
	wantCode(t, "cross-org member", as.AddGroupMember(ctx, "rival", "g", "user/ann"), cairn.ENotFound)
	_, err = as.GetPolicy(ctx, "rival", "p")
	wantCode(t, "cross-org policy", err, cairn.ENotFound)
	wantCode(t, "cross-org policy delete", as.DeletePolicy(ctx, "rival", "p"), cairn.ENotFound)
	if l, _ := as.ListAPIKeys(ctx, "rival", ""); len(l) != 0 {
		t.Fatalf("rival lists acme's keys: %v", l)
	}
	_, err = as.RevokeAPIKey(ctx, "rival", "k", time.Now())
	wantCode(t, "cross-org revoke", err, cairn.ENotFound)
	if got, _ := s.LookupAPIKey(ctx, k.Hash); !got.RevokedAt.IsZero() {
		t.Fatal("rival revoked acme's key")
	}
}

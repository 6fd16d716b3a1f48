package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/postgres"
	"github.com/cairn-audit/cairn/retraced"
	"github.com/cairn-audit/cairn/storetest"
	"github.com/jackc/pgx/v5"
)

// TestLeastPrivilege runs a node as a role with exactly the grants
// docs/postgres.md lists: everything a node does works, and the log
// tables refuse UPDATE, DELETE and TRUNCATE by privilege, not only by
// trigger.
func TestLeastPrivilege(t *testing.T) {
	t.Parallel()
	dsn, schema := newSchema(t)
	ctx := t.Context()
	owner, err := postgres.Open(ctx, postgres.Config{DSN: dsn, Schema: schema, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	var b [4]byte
	rand.Read(b[:])
	role := "cairn_app_" + hex.EncodeToString(b[:])
	grants := strings.ReplaceAll(strings.ReplaceAll(postgres.AppGrants, "cairn_app", role), "SCHEMA cairn", "SCHEMA "+schema)
	if _, err := owner.Pool().Exec(ctx, `CREATE ROLE `+role+` LOGIN; `+grants); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop role: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP OWNED BY `+role+` CASCADE; DROP ROLE `+role); err != nil {
			t.Errorf("drop role: %v", err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	app, err := postgres.Open(ctx, postgres.Config{DSN: u.String(), Schema: schema, MaxConns: 2})
	if err != nil {
		t.Fatalf("open as %s: %v", role, err)
	}
	defer app.Close()

	if _, err := app.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := app.CreateContext(ctx, &cairn.Context{Org: "acme", Name: "app"}); err != nil {
		t.Fatal(err)
	}
	desc := "edited"
	if _, err := app.UpdateContext(ctx, "acme", "app", cairn.ContextUpdate{Description: &desc}); err != nil {
		t.Fatal(err)
	}
	res, err := app.Append(ctx, []*cairn.AppendRequest{{Org: "acme", Context: "app", IdempotencyKey: "k", RequestHash: [32]byte{1},
		Entries: []cairn.Entry{storetest.NewEntry("acme", "app", cairn.Event{Action: "a.b", Description: "hello"})}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("append: %v %v", err, res)
	}
	c, _ := app.GetContext(ctx, "acme", "app")
	if err := app.AddCheckpoint(ctx, "acme", "app", &cairn.Checkpoint{Size: c.Size, Root: c.Root, Note: []byte("n\n"), SignedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := app.AddCosignatures(ctx, "acme", "app", c.Size, []cairn.Cosignature{{Witness: "w", Line: []byte("— w x\n"), Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if err := app.SetWitnessConfig(ctx, "acme", "app", cairn.WitnessConfig{Policy: cairn.WitnessFailOpen}); err != nil {
		t.Fatal(err)
	}
	if err := app.SetWitnessStatus(ctx, "acme", "app", cairn.WitnessStatus{Witness: "w", Size: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := app.SyncSigningKeys(ctx, [][]byte{make([]byte, 32)}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := app.CreateAPIKey(ctx, &cairn.APIKey{ID: "k1", Org: "acme", Name: "k", Prefix: "p", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// Access control: every write of cairn.AccessStore.
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, pr := range []*cairn.Principal{
		{ID: "p-ann", Org: "acme", Kind: cairn.PrincipalUser, Name: "ann", CreatedAt: now, UpdatedAt: now},
		{ID: "p-g", Org: "acme", Kind: cairn.PrincipalGroup, Name: "g", CreatedAt: now, UpdatedAt: now},
	} {
		if err := app.CreatePrincipal(ctx, pr); err != nil {
			t.Fatal(err)
		}
	}
	off := true
	if _, err := app.UpdatePrincipal(ctx, "acme", cairn.PrincipalUser, "ann", cairn.PrincipalUpdate{Disabled: &off}); err != nil {
		t.Fatal(err)
	}
	if err := app.AddGroupMember(ctx, "acme", "g", "user/ann"); err != nil {
		t.Fatal(err)
	}
	if err := app.RemoveGroupMember(ctx, "acme", "g", "user/ann"); err != nil {
		t.Fatal(err)
	}
	if err := app.AddGroupMember(ctx, "acme", "g", "user/ann"); err != nil {
		t.Fatal(err)
	}
	pol := &cairn.Policy{Org: "acme", Name: "p", Context: "app", Bindings: []cairn.Binding{{Permissions: []string{"view"}, Principals: []string{"user/ann"}}}}
	for range 2 {
		if _, err := app.PutPolicy(ctx, pol); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.CreateAPIKey(ctx, &cairn.APIKey{ID: "k2", Org: "acme", Name: "s", Prefix: "q", Hash: [32]byte{2}, CreatedAt: now, PrincipalID: "p-ann", Kind: cairn.KeyKindSession}); err != nil {
		t.Fatal(err)
	}
	if _, err := app.RevokeAPIKey(ctx, "acme", "k1", now); err != nil {
		t.Fatal(err)
	}
	if err := app.DeletePrincipal(ctx, "acme", cairn.PrincipalUser, "ann", now); err != nil {
		t.Fatal(err)
	}
	if err := app.DeletePolicy(ctx, "acme", "p"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE api_keys SET revoked_at = NULL`, `UPDATE api_keys SET principal_id = 'p-g'`} {
		if _, err := app.Pool().Exec(ctx, q); err == nil {
			t.Errorf("%s: allowed", q)
		}
	}
	if _, err := app.Pool().Exec(ctx, `UPDATE api_keys SET name = 'x'`); err == nil || !strings.Contains(err.Error(), "42501") {
		t.Errorf("UPDATE api_keys SET name: %v, want a privilege error (42501)", err)
	}
	f := storetest.NewForwarder("acme", "siem")
	if err := app.CreateForwarder(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := app.AdvanceCursor(ctx, "acme", "siem", "app", 0, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := app.SetForwarderState(ctx, "acme", "siem", cairn.ForwarderState{Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	if err := app.DeleteForwarder(ctx, "acme", "siem"); err != nil {
		t.Fatal(err)
	}
	// Retraced state: every write of retraced.State.
	vd := &retraced.ViewerDescriptor{ID: retraced.NewToken(), Org: "acme", GroupID: "g", ActorID: "a", Created: now}
	for range 2 {
		if err := app.PutViewer(ctx, vd); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.DeleteViewers(ctx, "acme", "g", "a"); err != nil {
		t.Fatal(err)
	}
	et := &retraced.EnterpriseToken{Token: retraced.NewToken(), Org: "acme", GroupID: "g", Created: now}
	for range 2 {
		if err := app.PutEnterprise(ctx, et); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.DeleteEnterprise(ctx, "acme", "g", et.Token); err != nil {
		t.Fatal(err)
	}
	if p, err := app.SearchEvents(ctx, "acme", cairn.Filter{Text: "hello", Limit: 10}); err != nil || len(p.Items) != 1 {
		t.Fatalf("search: %v, %v", p, err)
	}
	for _, q := range []string{
		`DELETE FROM events`, `UPDATE events SET action = 'x'`, `TRUNCATE events`,
		`DELETE FROM checkpoints`, `UPDATE checkpoints SET root = '\x00'::bytea`, `DELETE FROM cosignatures`,
		`ALTER TABLE events DISABLE TRIGGER events_append_only`, `DROP TRIGGER events_append_only ON events`,
	} {
		_, err := app.Pool().Exec(ctx, q)
		if err == nil {
			t.Errorf("%s: allowed", q)
		} else if !strings.Contains(err.Error(), "42501") {
			t.Errorf("%s: %v, want a privilege error (42501)", q, err)
		}
	}
}

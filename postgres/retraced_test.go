package postgres_test

import (
	"testing"
	"time"

	"github.com/cairn-audit/cairn/postgres"
	"github.com/cairn-audit/cairn/retraced"
)

// TestRetracedAcrossNodes checks what moving the state into the database is
// for: a token made on one node works on another, and a put prunes the
// expired descriptors from the table, not only from reads.
func TestRetracedAcrossNodes(t *testing.T) {
	t.Parallel()
	dsn, schema := newSchema(t)
	ctx := t.Context()
	var nodes [2]*postgres.Store
	for i := range nodes {
		s, err := postgres.Open(ctx, postgres.Config{DSN: dsn, Schema: schema, MaxConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		nodes[i] = s
	}
	a, b := nodes[0], nodes[1]
	if _, err := a.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	old := &retraced.ViewerDescriptor{ID: retraced.NewToken(), Org: "acme", GroupID: "g", ActorID: "a", Created: now.Add(-retraced.ViewerTTL - time.Second)}
	if _, err := a.Pool().Exec(ctx, `INSERT INTO retraced_viewers (id, org_id, created_at) SELECT $1, id, $2 FROM orgs WHERE name = 'acme'`,
		old.ID, old.Created); err != nil {
		t.Fatal(err)
	}
	v := &retraced.ViewerDescriptor{ID: retraced.NewToken(), Org: "acme", GroupID: "g", ActorID: "a", Created: now}
	if err := a.PutViewer(ctx, v); err != nil {
		t.Fatal(err)
	}
	if got, err := b.GetViewer(ctx, v.ID); err != nil || got.ID != v.ID {
		t.Fatalf("viewer made on node a, read on node b: %+v, %v", got, err)
	}
	var n int
	if err := a.Pool().QueryRow(ctx, `SELECT count(*) FROM retraced_viewers WHERE id = $1`, old.ID).Scan(&n); err != nil || n != 0 {
		t.Errorf("expired descriptor still stored after a put: %d rows, %v", n, err)
	}
	e := &retraced.EnterpriseToken{Token: retraced.NewToken(), Org: "acme", GroupID: "g", Created: now}
	if err := b.PutEnterprise(ctx, e); err != nil {
		t.Fatal(err)
	}
	if got, err := a.GetEnterprise(ctx, e.Token); err != nil || got.Token != e.Token {
		t.Fatalf("enterprise token made on node b, read on node a: %+v, %v", got, err)
	}
	if err := a.DeleteEnterprise(ctx, "acme", "g", e.Token); err != nil {
		t.Fatal(err)
	}
	if list, err := b.ListEnterprise(ctx, "acme", "g"); err != nil || len(list) != 0 {
		t.Fatalf("after deleting on node a, node b lists %v, %v", list, err)
	}
}

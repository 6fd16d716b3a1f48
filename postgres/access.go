package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var _ cairn.AccessStore = (*Store)(nil)

// dbtx is what the access methods need of the pool or a transaction.
type dbtx interface {
	querier
	rowsQuerier
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

const principalColumns = `p.id, o.name, p.kind, p.name, p.description, p.email, p.password, p.disabled, p.created_at, p.updated_at`

func scanPrincipal(row pgx.Row) (*cairn.Principal, error) {
	var p cairn.Principal
	if err := row.Scan(&p.ID, &p.Org, &p.Kind, &p.Name, &p.Description, &p.Email, &p.PasswordHash, &p.Disabled,
		&p.CreatedAt, &p.UpdatedAt); err != nil {
		return nil, err
	}
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return &p, nil
}

// splitRef splits "<kind>/<name>".
func splitRef(ref string) (kind, name string, err error) {
	kind, name, ok := strings.Cut(ref, "/")
	if !ok || name == "" || !slices.Contains(cairn.PrincipalKinds, kind) {
		return "", "", cairn.Errorf(cairn.EInvalid, "principal %q must be <kind>/<name> with kind one of %s", ref, strings.Join(cairn.PrincipalKinds, ", "))
	}
	return kind, name, nil
}

// now is the store's clock at the database's precision.
func (s *Store) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// CreatePrincipal implements cairn.AccessStore.
func (s *Store) CreatePrincipal(ctx context.Context, p *cairn.Principal) error {
	if !slices.Contains(cairn.PrincipalKinds, p.Kind) || p.Name == "" || p.ID == "" {
		return cairn.Errorf(cairn.EInvalid, "principal needs an id, a name and a known kind")
	}
	orgID, err := s.orgID(ctx, s.pool, p.Org)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO principals (id, org_id, kind, name, description, email, password, disabled, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, p.ID, orgID, p.Kind, p.Name, p.Description, p.Email, p.PasswordHash,
		p.Disabled, p.CreatedAt.UTC(), p.UpdatedAt.UTC())
	if pgCode(err) == uniqueViolation {
		return cairn.Errorf(cairn.EConflict, "%s %q already exists", p.Kind, p.Name)
	}
	return dbErr("insert principal", err)
}

// GetPrincipal implements cairn.AccessStore.
func (s *Store) GetPrincipal(ctx context.Context, org, kind, name string) (*cairn.Principal, error) {
	return s.getPrincipal(ctx, s.pool, org, kind, name, false)
}

// getPrincipal reads a principal; forUpdate locks its row to the end of
// the transaction.
func (s *Store) getPrincipal(ctx context.Context, q querier, org, kind, name string, forUpdate bool) (*cairn.Principal, error) {
	orgID, err := s.orgID(ctx, q, org)
	if err != nil {
		return nil, err
	}
	lock := ""
	if forUpdate {
		lock = " FOR UPDATE OF p"
	}
	p, err := scanPrincipal(q.QueryRow(ctx, `SELECT `+principalColumns+` FROM principals p JOIN orgs o ON o.id = p.org_id
		WHERE p.org_id = $1 AND p.kind = $2 AND p.name = $3`+lock, orgID, kind, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "%s %q not found", kind, name)
	}
	if err != nil {
		return nil, dbErr("get principal", err)
	}
	return p, nil
}

// GetPrincipalByID implements cairn.AccessStore.
func (s *Store) GetPrincipalByID(ctx context.Context, id string) (*cairn.Principal, error) {
	p, err := scanPrincipal(s.pool.QueryRow(ctx, `SELECT `+principalColumns+` FROM principals p JOIN orgs o ON o.id = p.org_id
		WHERE p.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "principal %q not found", id)
	}
	if err != nil {
		return nil, dbErr("get principal", err)
	}
	return p, nil
}

// ListPrincipals implements cairn.AccessStore.
func (s *Store) ListPrincipals(ctx context.Context, org, kind string) ([]*cairn.Principal, error) {
	orgID, err := s.orgID(ctx, s.pool, org)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+principalColumns+` FROM principals p JOIN orgs o ON o.id = p.org_id
		WHERE p.org_id = $1 AND ($2 = '' OR p.kind = $2) ORDER BY p.kind, p.name`, orgID, kind)
	if err != nil {
		return nil, dbErr("list principals", err)
	}
	defer rows.Close()
	var out []*cairn.Principal
	for rows.Next() {
		p, err := scanPrincipal(rows)
		if err != nil {
			return nil, dbErr("list principals", err)
		}
		out = append(out, p)
	}
	return out, dbErr("list principals", rows.Err())
}

// UpdatePrincipal implements cairn.AccessStore.
func (s *Store) UpdatePrincipal(ctx context.Context, org, kind, name string, u cairn.PrincipalUpdate) (*cairn.Principal, error) {
	var p *cairn.Principal
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if p, err = s.getPrincipal(ctx, tx, org, kind, name, true); err != nil {
			return err
		}
		if u.Description != nil {
			p.Description = *u.Description
		}
		if u.Email != nil {
			p.Email = *u.Email
		}
		if u.PasswordHash != nil {
			p.PasswordHash = *u.PasswordHash
		}
		if u.Disabled != nil {
			p.Disabled = *u.Disabled
		}
		p.UpdatedAt = s.now()
		_, err = tx.Exec(ctx, `UPDATE principals SET description = $1, email = $2, password = $3, disabled = $4, updated_at = $5
			WHERE id = $6`, p.Description, p.Email, p.PasswordHash, p.Disabled, p.UpdatedAt, p.ID)
		return err
	})
	if err != nil {
		return nil, dbErr("update principal", err)
	}
	return p, nil
}

// DeletePrincipal implements cairn.AccessStore: memberships both ways,
// its keys revoked (and detached, so the row can go), its ref scrubbed
// from every binding of the org, in one transaction.
func (s *Store) DeletePrincipal(ctx context.Context, org, kind, name string, now time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		p, err := s.getPrincipal(ctx, tx, org, kind, name, true)
		if err != nil {
			return err
		}
		for _, st := range []struct {
			q    string
			args []any
		}{
			{`DELETE FROM group_members WHERE group_id = $1 OR member_id = $1`, []any{p.ID}},
			{`UPDATE api_keys SET revoked_at = $1 WHERE principal_id = $2 AND revoked_at IS NULL`, []any{now.UTC(), p.ID}},
			{`UPDATE api_keys SET principal_id = NULL WHERE principal_id = $1`, []any{p.ID}},
			{`DELETE FROM principals WHERE id = $1`, []any{p.ID}},
		} {
			if _, err := tx.Exec(ctx, st.q, st.args...); err != nil {
				return err
			}
		}
		// Scrub the principal from every policy binding of the org, so a
		// principal created later under the same name inherits nothing.
		// The rows are locked: a concurrent PutPolicy waits, then
		// replaces the scrubbed version (it was validated against the
		// principals it names).
		pols, err := s.listPolicies(ctx, tx, org, true)
		if err != nil {
			return err
		}
		ref := p.Ref()
		for _, pol := range pols {
			changed := false
			for i := range pol.Bindings {
				b := &pol.Bindings[i]
				if j := slices.Index(b.Principals, ref); j >= 0 {
					b.Principals = slices.Delete(b.Principals, j, j+1)
					changed = true
				}
			}
			if changed {
				if err := s.putPolicy(ctx, tx, pol); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return dbErr("delete principal", err)
}

// principalID resolves a "<kind>/<name>" ref in org.
func (s *Store) principalID(ctx context.Context, q querier, org, ref string) (id, kind string, err error) {
	kind, name, err := splitRef(ref)
	if err != nil {
		return "", "", err
	}
	p, err := s.getPrincipal(ctx, q, org, kind, name, false)
	if err != nil {
		return "", "", err
	}
	return p.ID, p.Kind, nil
}

// AddGroupMember implements cairn.AccessStore.
func (s *Store) AddGroupMember(ctx context.Context, org, group, memberRef string) error {
	g, err := s.getPrincipal(ctx, s.pool, org, cairn.PrincipalGroup, group, false)
	if err != nil {
		return err
	}
	id, kind, err := s.principalID(ctx, s.pool, org, memberRef)
	if err != nil {
		return err
	}
	if kind == cairn.PrincipalGroup {
		return cairn.Errorf(cairn.EInvalid, "groups do not nest: %q is a group", memberRef)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO group_members (group_id, member_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, g.ID, id)
	if pgCode(err) == foreignKeyViolation {
		// Deleted between the look-up and the insert.
		return cairn.Errorf(cairn.ENotFound, "group %q or %s not found", group, memberRef)
	}
	return dbErr("add group member", err)
}

// RemoveGroupMember implements cairn.AccessStore.
func (s *Store) RemoveGroupMember(ctx context.Context, org, group, memberRef string) error {
	g, err := s.getPrincipal(ctx, s.pool, org, cairn.PrincipalGroup, group, false)
	if err != nil {
		return err
	}
	id, _, err := s.principalID(ctx, s.pool, org, memberRef)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM group_members WHERE group_id = $1 AND member_id = $2`, g.ID, id)
	if err != nil {
		return dbErr("remove group member", err)
	}
	if tag.RowsAffected() == 0 {
		return cairn.Errorf(cairn.ENotFound, "%s is not a member of group %q", memberRef, group)
	}
	return nil
}

// GroupMembers implements cairn.AccessStore.
func (s *Store) GroupMembers(ctx context.Context, org, group string) ([]string, error) {
	g, err := s.getPrincipal(ctx, s.pool, org, cairn.PrincipalGroup, group, false)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT p.kind || '/' || p.name AS ref FROM group_members m JOIN principals p ON p.id = m.member_id
		WHERE m.group_id = $1 ORDER BY p.kind, p.name`, g.ID) // = by ref: no kind is a prefix of another
	if err != nil {
		return nil, dbErr("group members", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return out, dbErr("group members", err)
}

// GroupsOf implements cairn.AccessStore.
func (s *Store) GroupsOf(ctx context.Context, org, memberRef string) ([]string, error) {
	id, _, err := s.principalID(ctx, s.pool, org, memberRef)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT g.name FROM group_members m JOIN principals g ON g.id = m.group_id
		WHERE m.member_id = $1 ORDER BY g.name`, id)
	if err != nil {
		return nil, dbErr("groups of", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return out, dbErr("groups of", err)
}

const policyColumns = `o.name, p.name, p.description, p.context, p.bindings, p.created_at, p.updated_at`

func scanPolicy(row pgx.Row) (*cairn.Policy, error) {
	var p cairn.Policy
	var bindings []byte
	if err := row.Scan(&p.Org, &p.Name, &p.Description, &p.Context, &bindings, &p.CreatedAt, &p.UpdatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(bindings, &p.Bindings); err != nil {
		return nil, fmt.Errorf("decode policy bindings: %w", err)
	}
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return &p, nil
}

// PutPolicy implements cairn.AccessStore.
func (s *Store) PutPolicy(ctx context.Context, p *cairn.Policy) (*cairn.Policy, error) {
	now := s.now()
	cp := *p
	cp.CreatedAt, cp.UpdatedAt = now, now
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.putPolicy(ctx, tx, &cp); err != nil {
			return err
		}
		// The upsert keeps the stored creation time: read it back.
		return tx.QueryRow(ctx, `SELECT p.created_at FROM policies p JOIN orgs o ON o.id = p.org_id
			WHERE o.name = $1 AND p.name = $2`, cp.Org, cp.Name).Scan(&cp.CreatedAt)
	})
	if err != nil {
		return nil, dbErr("put policy", err)
	}
	cp.CreatedAt = cp.CreatedAt.UTC()
	return &cp, nil
}

// putPolicy inserts or replaces a policy, keeping the creation time of the
// one it replaces.
func (s *Store) putPolicy(ctx context.Context, tx dbtx, p *cairn.Policy) error {
	orgID, err := s.orgID(ctx, tx, p.Org)
	if err != nil {
		return err
	}
	bindings := p.Bindings
	if bindings == nil {
		bindings = []cairn.Binding{}
	}
	b, err := json.Marshal(bindings)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO policies (org_id, name, description, context, bindings, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (org_id, name) DO UPDATE SET description = excluded.description, context = excluded.context,
			bindings = excluded.bindings, updated_at = excluded.updated_at`,
		orgID, p.Name, p.Description, p.Context, string(b), p.CreatedAt.UTC(), p.UpdatedAt.UTC())
	return dbErr("put policy", err)
}

// GetPolicy implements cairn.AccessStore.
func (s *Store) GetPolicy(ctx context.Context, org, name string) (*cairn.Policy, error) {
	orgID, err := s.orgID(ctx, s.pool, org)
	if err != nil {
		return nil, err
	}
	p, err := scanPolicy(s.pool.QueryRow(ctx, `SELECT `+policyColumns+` FROM policies p JOIN orgs o ON o.id = p.org_id
		WHERE p.org_id = $1 AND p.name = $2`, orgID, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "policy %q not found", name)
	}
	if err != nil {
		return nil, dbErr("get policy", err)
	}
	return p, nil
}

// ListPolicies implements cairn.AccessStore.
func (s *Store) ListPolicies(ctx context.Context, org string) ([]*cairn.Policy, error) {
	return s.listPolicies(ctx, s.pool, org, false)
}

func (s *Store) listPolicies(ctx context.Context, q dbtx, org string, forUpdate bool) ([]*cairn.Policy, error) {
	orgID, err := s.orgID(ctx, q, org)
	if err != nil {
		return nil, err
	}
	lock := ""
	if forUpdate {
		lock = " FOR UPDATE OF p"
	}
	rows, err := q.Query(ctx, `SELECT `+policyColumns+` FROM policies p JOIN orgs o ON o.id = p.org_id
		WHERE p.org_id = $1 ORDER BY p.name`+lock, orgID)
	if err != nil {
		return nil, dbErr("list policies", err)
	}
	defer rows.Close()
	var out []*cairn.Policy
	for rows.Next() {
		p, err := scanPolicy(rows)
		if err != nil {
			return nil, dbErr("list policies", err)
		}
		out = append(out, p)
	}
	return out, dbErr("list policies", rows.Err())
}

// DeletePolicy implements cairn.AccessStore.
func (s *Store) DeletePolicy(ctx context.Context, org, name string) error {
	orgID, err := s.orgID(ctx, s.pool, org)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM policies WHERE org_id = $1 AND name = $2`, orgID, name)
	if err != nil {
		return dbErr("delete policy", err)
	}
	if tag.RowsAffected() == 0 {
		return cairn.Errorf(cairn.ENotFound, "policy %q not found", name)
	}
	return nil
}

// ListAPIKeys implements cairn.AccessStore.
func (s *Store) ListAPIKeys(ctx context.Context, org, principalID string) ([]*cairn.APIKey, error) {
	orgID, err := s.orgID(ctx, s.pool, org)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM api_keys k JOIN orgs o ON o.id = k.org_id
		WHERE k.org_id = $1 AND ($2 = '' OR k.principal_id = $2) ORDER BY k.created_at DESC, k.id DESC`, orgID, principalID)
	if err != nil {
		return nil, dbErr("list api keys", err)
	}
	defer rows.Close()
	var out []*cairn.APIKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, dbErr("list api keys", err)
		}
		out = append(out, k)
	}
	return out, dbErr("list api keys", rows.Err())
}

// RevokeAPIKey implements cairn.AccessStore. One statement: the first
// revocation time wins, and the key is returned as stored.
func (s *Store) RevokeAPIKey(ctx context.Context, org, id string, now time.Time) (*cairn.APIKey, error) {
	orgID, err := s.orgID(ctx, s.pool, org)
	if err != nil {
		return nil, err
	}
	k, err := scanKey(s.pool.QueryRow(ctx, `UPDATE api_keys k SET revoked_at = coalesce(k.revoked_at, $3)
		FROM orgs o WHERE o.id = k.org_id AND k.org_id = $1 AND k.id = $2
		RETURNING `+keyColumns, orgID, id, now.UTC()))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "api key %q not found", id)
	}
	if err != nil {
		return nil, dbErr("revoke api key", err)
	}
	return k, nil
}

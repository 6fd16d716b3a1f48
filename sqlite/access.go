package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cairn-audit/cairn"
)

var _ cairn.AccessStore = (*Store)(nil)

const principalColumns = `p.id, o.name, p.kind, p.name, p.description, p.email, p.password, p.disabled, p.created_at, p.updated_at`

func scanPrincipal(row scanner) (*cairn.Principal, error) {
	var p cairn.Principal
	var created, updated int64
	if err := row.Scan(&p.ID, &p.Org, &p.Kind, &p.Name, &p.Description, &p.Email, &p.PasswordHash, &p.Disabled, &created, &updated); err != nil {
		return nil, err
	}
	p.CreatedAt, p.UpdatedAt = fromMicros(created), fromMicros(updated)
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

// CreatePrincipal implements cairn.AccessStore.
func (s *Store) CreatePrincipal(ctx context.Context, p *cairn.Principal) error {
	if !slices.Contains(cairn.PrincipalKinds, p.Kind) || p.Name == "" || p.ID == "" {
		return cairn.Errorf(cairn.EInvalid, "principal needs an id, a name and a known kind")
	}
	orgID, err := s.orgID(ctx, s.w, p.Org)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO principals (id, org_id, kind, name, description, email, password, disabled, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, p.ID, orgID, p.Kind, p.Name, p.Description, p.Email, p.PasswordHash, p.Disabled,
		micros(p.CreatedAt), micros(p.UpdatedAt))
	if isConstraint(err) {
		return cairn.Errorf(cairn.EConflict, "%s %q already exists", p.Kind, p.Name)
	}
	return s.txErr("insert principal", err)
}

// GetPrincipal implements cairn.AccessStore.
func (s *Store) GetPrincipal(ctx context.Context, org, kind, name string) (*cairn.Principal, error) {
	return s.getPrincipal(ctx, s.r, org, kind, name)
}

func (s *Store) getPrincipal(ctx context.Context, q querier, org, kind, name string) (*cairn.Principal, error) {
	if _, err := s.orgID(ctx, q, org); err != nil {
		return nil, err
	}
	p, err := scanPrincipal(q.QueryRowContext(ctx, `SELECT `+principalColumns+` FROM principals p JOIN orgs o ON o.id = p.org_id
		WHERE o.name = ? AND p.kind = ? AND p.name = ?`, org, kind, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "%s %q not found", kind, name)
	}
	if err != nil {
		return nil, fmt.Errorf("get principal: %w", err)
	}
	return p, nil
}

// GetPrincipalByID implements cairn.AccessStore.
func (s *Store) GetPrincipalByID(ctx context.Context, id string) (*cairn.Principal, error) {
	p, err := scanPrincipal(s.r.QueryRowContext(ctx, `SELECT `+principalColumns+` FROM principals p JOIN orgs o ON o.id = p.org_id
		WHERE p.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "principal %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get principal: %w", err)
	}
	return p, nil
}

// ListPrincipals implements cairn.AccessStore.
func (s *Store) ListPrincipals(ctx context.Context, org, kind string) ([]*cairn.Principal, error) {
	orgID, err := s.orgID(ctx, s.r, org)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+principalColumns+` FROM principals p JOIN orgs o ON o.id = p.org_id
		WHERE p.org_id = ? AND (? = '' OR p.kind = ?) ORDER BY p.kind, p.name`, orgID, kind, kind)
	if err != nil {
		return nil, fmt.Errorf("list principals: %w", err)
	}
	defer rows.Close()
	var out []*cairn.Principal
	for rows.Next() {
		p, err := scanPrincipal(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// UpdatePrincipal implements cairn.AccessStore.
func (s *Store) UpdatePrincipal(ctx context.Context, org, kind, name string, u cairn.PrincipalUpdate) (*cairn.Principal, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, s.txErr("begin", err)
	}
	defer tx.Rollback()
	p, err := s.getPrincipal(ctx, tx, org, kind, name)
	if err != nil {
		return nil, err
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
	p.UpdatedAt = fromMicros(micros(s.cfg.Now()))
	if _, err := tx.ExecContext(ctx, `UPDATE principals SET description = ?, email = ?, password = ?, disabled = ?, updated_at = ? WHERE id = ?`,
		p.Description, p.Email, p.PasswordHash, p.Disabled, micros(p.UpdatedAt), p.ID); err != nil {
		return nil, fmt.Errorf("update principal: %w", err)
	}
	return p, s.txErr("commit", tx.Commit())
}

// DeletePrincipal implements cairn.AccessStore.
func (s *Store) DeletePrincipal(ctx context.Context, org, kind, name string, now time.Time) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.txErr("begin", err)
	}
	defer tx.Rollback()
	p, err := s.getPrincipal(ctx, tx, org, kind, name)
	if err != nil {
		return err
	}
	ref := p.Ref()
	for _, st := range []struct {
		q    string
		args []any
	}{
		{`DELETE FROM group_members WHERE group_id = ? OR member_id = ?`, []any{p.ID, p.ID}},
		{`UPDATE api_keys SET revoked_at = ? WHERE principal_id = ? AND revoked_at = 0`, []any{micros(now), p.ID}},
		{`UPDATE api_keys SET principal_id = NULL WHERE principal_id = ?`, []any{p.ID}},
		{`DELETE FROM principals WHERE id = ?`, []any{p.ID}},
	} {
		if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
			return fmt.Errorf("delete principal: %w", err)
		}
	}
	// Scrub the principal from every policy binding of the org, so a
	// principal created later under the same name inherits nothing.
	pols, err := s.listPolicies(ctx, tx, org)
	if err != nil {
		return err
	}
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
	return s.txErr("commit", tx.Commit())
}

// principalID resolves a "<kind>/<name>" ref in org.
func (s *Store) principalID(ctx context.Context, q querier, org, ref string) (string, string, error) {
	kind, name, err := splitRef(ref)
	if err != nil {
		return "", "", err
	}
	p, err := s.getPrincipal(ctx, q, org, kind, name)
	if err != nil {
		return "", "", err
	}
	return p.ID, p.Kind, nil
}

// AddGroupMember implements cairn.AccessStore.
func (s *Store) AddGroupMember(ctx context.Context, org, group, memberRef string) error {
	g, err := s.getPrincipal(ctx, s.w, org, cairn.PrincipalGroup, group)
	if err != nil {
		return err
	}
	id, kind, err := s.principalID(ctx, s.w, org, memberRef)
	if err != nil {
		return err
	}
	if kind == cairn.PrincipalGroup {
		return cairn.Errorf(cairn.EInvalid, "groups do not nest: %q is a group", memberRef)
	}
	_, err = s.w.ExecContext(ctx, `INSERT OR IGNORE INTO group_members (group_id, member_id) VALUES (?, ?)`, g.ID, id)
	return s.txErr("add group member", err)
}

// RemoveGroupMember implements cairn.AccessStore.
func (s *Store) RemoveGroupMember(ctx context.Context, org, group, memberRef string) error {
	g, err := s.getPrincipal(ctx, s.w, org, cairn.PrincipalGroup, group)
	if err != nil {
		return err
	}
	id, _, err := s.principalID(ctx, s.w, org, memberRef)
	if err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM group_members WHERE group_id = ? AND member_id = ?`, g.ID, id)
	if err != nil {
		return s.txErr("remove group member", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cairn.Errorf(cairn.ENotFound, "%s is not a member of group %q", memberRef, group)
	}
	return nil
}

// GroupMembers implements cairn.AccessStore.
func (s *Store) GroupMembers(ctx context.Context, org, group string) ([]string, error) {
	g, err := s.getPrincipal(ctx, s.r, org, cairn.PrincipalGroup, group)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT p.kind || '/' || p.name AS ref FROM group_members m JOIN principals p ON p.id = m.member_id
		WHERE m.group_id = ? ORDER BY ref`, g.ID)
	if err != nil {
		return nil, fmt.Errorf("group members: %w", err)
	}
	return scanStrings(rows)
}

// GroupsOf implements cairn.AccessStore.
func (s *Store) GroupsOf(ctx context.Context, org, memberRef string) ([]string, error) {
	id, _, err := s.principalID(ctx, s.r, org, memberRef)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT g.name FROM group_members m JOIN principals g ON g.id = m.group_id
		WHERE m.member_id = ? ORDER BY g.name`, id)
	if err != nil {
		return nil, fmt.Errorf("groups of: %w", err)
	}
	return scanStrings(rows)
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

const policyColumns = `o.name, p.name, p.description, p.context, p.bindings, p.created_at, p.updated_at`

func scanPolicy(row scanner) (*cairn.Policy, error) {
	var p cairn.Policy
	var bindings string
	var created, updated int64
	if err := row.Scan(&p.Org, &p.Name, &p.Description, &p.Context, &bindings, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(bindings), &p.Bindings); err != nil {
		return nil, fmt.Errorf("decode policy bindings: %w", err)
	}
	p.CreatedAt, p.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &p, nil
}

// PutPolicy implements cairn.AccessStore.
func (s *Store) PutPolicy(ctx context.Context, p *cairn.Policy) (*cairn.Policy, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, s.txErr("begin", err)
	}
	defer tx.Rollback()
	now := fromMicros(micros(s.cfg.Now()))
	cp := *p
	cp.CreatedAt, cp.UpdatedAt = now, now
	if old, err := s.getPolicy(ctx, tx, p.Org, p.Name); err == nil {
		cp.CreatedAt = old.CreatedAt
	} else if cairn.ErrorCode(err) != cairn.ENotFound {
		return nil, err
	}
	if err := s.putPolicy(ctx, tx, &cp); err != nil {
		return nil, err
	}
	return &cp, s.txErr("commit", tx.Commit())
}

type execer interface {
	querier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *Store) putPolicy(ctx context.Context, tx execer, p *cairn.Policy) error {
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
	_, err = tx.ExecContext(ctx, `INSERT INTO policies (org_id, name, description, context, bindings, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (org_id, name) DO UPDATE SET description = excluded.description, context = excluded.context,
			bindings = excluded.bindings, updated_at = excluded.updated_at`,
		orgID, p.Name, p.Description, p.Context, string(b), micros(p.CreatedAt), micros(p.UpdatedAt))
	return s.txErr("put policy", err)
}

// GetPolicy implements cairn.AccessStore.
func (s *Store) GetPolicy(ctx context.Context, org, name string) (*cairn.Policy, error) {
	return s.getPolicy(ctx, s.r, org, name)
}

func (s *Store) getPolicy(ctx context.Context, q querier, org, name string) (*cairn.Policy, error) {
	orgID, err := s.orgID(ctx, q, org)
	if err != nil {
		return nil, err
	}
	p, err := scanPolicy(q.QueryRowContext(ctx, `SELECT `+policyColumns+` FROM policies p JOIN orgs o ON o.id = p.org_id
		WHERE p.org_id = ? AND p.name = ?`, orgID, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "policy %q not found", name)
	}
	if err != nil {
		return nil, fmt.Errorf("get policy: %w", err)
	}
	return p, nil
}

// ListPolicies implements cairn.AccessStore.
func (s *Store) ListPolicies(ctx context.Context, org string) ([]*cairn.Policy, error) {
	return s.listPolicies(ctx, s.r, org)
}

type queryer interface {
	querier
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *Store) listPolicies(ctx context.Context, q queryer, org string) ([]*cairn.Policy, error) {
	orgID, err := s.orgID(ctx, q, org)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, `SELECT `+policyColumns+` FROM policies p JOIN orgs o ON o.id = p.org_id
		WHERE p.org_id = ? ORDER BY p.name`, orgID)
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	defer rows.Close()
	var out []*cairn.Policy
	for rows.Next() {
		p, err := scanPolicy(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// DeletePolicy implements cairn.AccessStore.
func (s *Store) DeletePolicy(ctx context.Context, org, name string) error {
	orgID, err := s.orgID(ctx, s.w, org)
	if err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM policies WHERE org_id = ? AND name = ?`, orgID, name)
	if err != nil {
		return s.txErr("delete policy", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cairn.Errorf(cairn.ENotFound, "policy %q not found", name)
	}
	return nil
}

// ListAPIKeys implements cairn.AccessStore.
func (s *Store) ListAPIKeys(ctx context.Context, org, principalID string) ([]*cairn.APIKey, error) {
	orgID, err := s.orgID(ctx, s.r, org)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+keyColumns+` FROM api_keys k JOIN orgs o ON o.id = k.org_id
		WHERE k.org_id = ? AND (? = '' OR k.principal_id = ?) ORDER BY k.created_at DESC, k.id DESC`, orgID, principalID, principalID)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	defer rows.Close()
	var out []*cairn.APIKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAPIKey implements cairn.AccessStore.
func (s *Store) RevokeAPIKey(ctx context.Context, org, id string, now time.Time) (*cairn.APIKey, error) {
	orgID, err := s.orgID(ctx, s.w, org)
	if err != nil {
		return nil, err
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE org_id = ? AND id = ? AND revoked_at = 0`,
		micros(now), orgID, id); err != nil {
		return nil, s.txErr("revoke api key", err)
	}
	k, err := scanKey(s.w.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys k JOIN orgs o ON o.id = k.org_id
		WHERE k.org_id = ? AND k.id = ?`, orgID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "api key %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("revoke api key: %w", err)
	}
	return k, nil
}

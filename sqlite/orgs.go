package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cairn-audit/cairn"
	"golang.org/x/mod/sumdb/tlog"
)

// emptyRoot is the RFC 6962 root of the empty tree.
var emptyRoot, _ = tlog.TreeHash(0, nil)

// CreateOrg implements cairn.Store.
func (s *Store) CreateOrg(ctx context.Context, name string) (*cairn.Org, error) {
	now := s.cfg.Now().UTC()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, s.txErr("begin", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO orgs (name, created_at) VALUES (?, ?)`, name, micros(now))
	if isConstraint(err) {
		return nil, cairn.Errorf(cairn.EConflict, "org %q already exists", name)
	}
	if err != nil {
		return nil, fmt.Errorf("insert org: %w", err)
	}
	orgID, _ := res.LastInsertId()
	if _, err := tx.ExecContext(ctx, `INSERT INTO contexts (org_id, name, description, builtin, created_at, updated_at, root)
		VALUES (?, ?, ?, 1, ?, ?, ?)`, orgID, cairn.BuiltinContext, "Cairn's own administrative actions and reads of the log",
		micros(now), micros(now), emptyRoot[:]); err != nil {
		return nil, fmt.Errorf("insert builtin context: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, s.txErr("commit", err)
	}
	return &cairn.Org{Name: name, CreatedAt: fromMicros(micros(now))}, nil
}

// ListOrgs implements cairn.Store.
func (s *Store) ListOrgs(ctx context.Context) ([]*cairn.Org, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, created_at FROM orgs ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list orgs: %w", err)
	}
	defer rows.Close()
	var out []*cairn.Org
	for rows.Next() {
		var o cairn.Org
		var created int64
		if err := rows.Scan(&o.Name, &created); err != nil {
			return nil, err
		}
		o.CreatedAt = fromMicros(created)
		out = append(out, &o)
	}
	return out, rows.Err()
}

// CreateContext implements cairn.Store.
func (s *Store) CreateContext(ctx context.Context, c *cairn.Context) (*cairn.Context, error) {
	orgID, err := s.orgID(ctx, s.w, c.Org)
	if err != nil {
		return nil, err
	}
	tags, redaction, err := encodeEditable(c.Tags, c.Redaction)
	if err != nil {
		return nil, err
	}
	now := micros(s.cfg.Now())
	_, err = s.w.ExecContext(ctx, `INSERT INTO contexts (org_id, name, description, tags, redaction, created_at, updated_at, root)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, orgID, c.Name, c.Description, tags, redaction, now, now, emptyRoot[:])
	if isConstraint(err) {
		return nil, cairn.Errorf(cairn.EConflict, "context %q already exists", c.Name)
	}
	if err != nil {
		return nil, s.txErr("insert context", err)
	}
	return s.getContext(ctx, s.w, c.Org, c.Name)
}

// GetContext implements cairn.Store.
func (s *Store) GetContext(ctx context.Context, org, name string) (*cairn.Context, error) {
	return s.getContext(ctx, s.r, org, name)
}

const contextColumns = `o.name, c.name, c.description, c.tags, c.redaction, c.builtin, c.created_at, c.updated_at, c.size, c.root`

func (s *Store) getContext(ctx context.Context, q querier, org, name string) (*cairn.Context, error) {
	row := q.QueryRowContext(ctx, `SELECT `+contextColumns+` FROM contexts c JOIN orgs o ON o.id = c.org_id
		WHERE o.name = ? AND c.name = ?`, org, name)
	c, err := scanContext(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "context %q not found in org %q", name, org)
	}
	return c, err
}

// ListContexts implements cairn.Store.
func (s *Store) ListContexts(ctx context.Context, org string) ([]*cairn.Context, error) {
	if _, err := s.orgID(ctx, s.r, org); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+contextColumns+` FROM contexts c JOIN orgs o ON o.id = c.org_id
		WHERE o.name = ? ORDER BY c.name`, org)
	if err != nil {
		return nil, fmt.Errorf("list contexts: %w", err)
	}
	defer rows.Close()
	var out []*cairn.Context
	for rows.Next() {
		c, err := scanContext(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// UpdateContext implements cairn.Store.
func (s *Store) UpdateContext(ctx context.Context, org, name string, u cairn.ContextUpdate) (*cairn.Context, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, s.txErr("begin", err)
	}
	defer tx.Rollback()
	c, err := s.getContext(ctx, tx, org, name)
	if err != nil {
		return nil, err
	}
	if u.Description != nil {
		c.Description = *u.Description
	}
	if u.Tags != nil {
		c.Tags = *u.Tags
	}
	if u.Redaction != nil {
		c.Redaction = *u.Redaction
	}
	tags, redaction, err := encodeEditable(c.Tags, c.Redaction)
	if err != nil {
		return nil, err
	}
	ref, err := s.resolve(ctx, tx, org, name)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE contexts SET description = ?, tags = ?, redaction = ?, updated_at = ? WHERE id = ?`,
		c.Description, tags, redaction, micros(s.cfg.Now()), ref.id); err != nil {
		return nil, fmt.Errorf("update context: %w", err)
	}
	c, err = s.getContext(ctx, tx, org, name)
	if err != nil {
		return nil, err
	}
	return c, s.txErr("commit", tx.Commit())
}

func encodeEditable(tags map[string]string, rules []cairn.RedactionRule) (string, string, error) {
	if tags == nil {
		tags = map[string]string{}
	}
	if rules == nil {
		rules = []cairn.RedactionRule{}
	}
	t, err := json.Marshal(tags)
	if err != nil {
		return "", "", err
	}
	r, err := json.Marshal(rules)
	return string(t), string(r), err
}

type scanner interface{ Scan(...any) error }

func scanContext(row scanner) (*cairn.Context, error) {
	var c cairn.Context
	var tags, redaction string
	var created, updated int64
	var root []byte
	if err := row.Scan(&c.Org, &c.Name, &c.Description, &tags, &redaction, &c.Builtin, &created, &updated, &c.Size, &root); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(tags), &c.Tags); err != nil {
		return nil, fmt.Errorf("decode tags: %w", err)
	}
	if err := json.Unmarshal([]byte(redaction), &c.Redaction); err != nil {
		return nil, fmt.Errorf("decode redaction: %w", err)
	}
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	copy(c.Root[:], root)
	return &c, nil
}

// CreateAPIKey implements cairn.Store.
func (s *Store) CreateAPIKey(ctx context.Context, k *cairn.APIKey) error {
	orgID, err := s.orgID(ctx, s.w, k.Org)
	if err != nil {
		return err
	}
	kind := k.Kind
	if kind == "" {
		kind = cairn.KeyKindAPI
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO api_keys (id, org_id, name, prefix, hash, admin, created_at, expires_at, revoked_at, principal_id, kind)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, k.ID, orgID, k.Name, k.Prefix, k.Hash[:], k.Admin,
		micros(k.CreatedAt), micros(k.ExpiresAt), micros(k.RevokedAt), nullable(k.PrincipalID), kind)
	if isConstraint(err) {
		return cairn.Errorf(cairn.EConflict, "api key already exists")
	}
	return s.txErr("insert api key", err)
}

// LookupAPIKey implements cairn.Store.
func (s *Store) LookupAPIKey(ctx context.Context, hash [32]byte) (*cairn.APIKey, error) {
	k, err := scanKey(s.r.QueryRowContext(ctx, `SELECT `+keyColumns+`
		FROM api_keys k JOIN orgs o ON o.id = k.org_id WHERE k.hash = ?`, hash[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "api key not found")
	}
	if err != nil {
		return nil, fmt.Errorf("lookup api key: %w", err)
	}
	k.Hash = hash
	return k, nil
}

const keyColumns = `k.id, o.name, k.name, k.prefix, k.admin, k.created_at, k.expires_at, k.revoked_at, k.principal_id, k.kind`

func scanKey(row scanner) (*cairn.APIKey, error) {
	var k cairn.APIKey
	var created, expires, revoked int64
	var principal sql.NullString
	if err := row.Scan(&k.ID, &k.Org, &k.Name, &k.Prefix, &k.Admin, &created, &expires, &revoked, &principal, &k.Kind); err != nil {
		return nil, err
	}
	k.PrincipalID = principal.String
	k.CreatedAt, k.ExpiresAt, k.RevokedAt = fromMicros(created), fromMicros(expires), fromMicros(revoked)
	return &k, nil
}

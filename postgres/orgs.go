package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
)

// emptyRoot is the RFC 6962 root of the empty tree.
var emptyRoot, _ = tlog.TreeHash(0, nil)

// CreateOrg implements cairn.Store.
func (s *Store) CreateOrg(ctx context.Context, name string) (*cairn.Org, error) {
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	err := s.inTx(ctx, "create org", func(tx pgx.Tx) error {
		var orgID int64
		err := tx.QueryRow(ctx, `INSERT INTO orgs (name, created_at) VALUES ($1, $2) RETURNING id`, name, now).Scan(&orgID)
		if pgCode(err) == uniqueViolation {
			return cairn.Errorf(cairn.EConflict, "org %q already exists", name)
		}
		if err != nil {
			return fmt.Errorf("insert org: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO commit_clocks (org_id) VALUES ($1)`, orgID); err != nil {
			return fmt.Errorf("insert commit clock: %w", err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO contexts (org_id, name, description, builtin, created_at, updated_at, root)
			VALUES ($1, $2, $3, true, $4, $4, $5)`, orgID, cairn.BuiltinContext,
			"Cairn's own administrative actions and reads of the log", now, emptyRoot[:])
		if err != nil {
			return fmt.Errorf("insert builtin context: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &cairn.Org{Name: name, CreatedAt: now}, nil
}

// ListOrgs implements cairn.Store.
func (s *Store) ListOrgs(ctx context.Context) ([]*cairn.Org, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, created_at FROM orgs ORDER BY name`)
	if err != nil {
		return nil, dbErr("list orgs", err)
	}
	defer rows.Close()
	var out []*cairn.Org
	for rows.Next() {
		var o cairn.Org
		if err := rows.Scan(&o.Name, &o.CreatedAt); err != nil {
			return nil, dbErr("list orgs", err)
		}
		o.CreatedAt = o.CreatedAt.UTC()
		out = append(out, &o)
	}
	return out, dbErr("list orgs", rows.Err())
}

// CreateContext implements cairn.Store.
func (s *Store) CreateContext(ctx context.Context, c *cairn.Context) (*cairn.Context, error) {
	orgID, err := s.orgID(ctx, s.pool, c.Org)
	if err != nil {
		return nil, err
	}
	tags, redaction, err := encodeEditable(c.Tags, c.Redaction)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	_, err = s.pool.Exec(ctx, `INSERT INTO contexts (org_id, name, description, tags, redaction, created_at, updated_at, root)
		VALUES ($1, $2, $3, $4, $5, $6, $6, $7)`, orgID, c.Name, c.Description, tags, redaction, now, emptyRoot[:])
	if pgCode(err) == uniqueViolation {
		return nil, cairn.Errorf(cairn.EConflict, "context %q already exists", c.Name)
	}
	if err != nil {
		return nil, dbErr("insert context", err)
	}
	return s.getContext(ctx, s.pool, c.Org, c.Name, "")
}

// GetContext implements cairn.Store.
func (s *Store) GetContext(ctx context.Context, org, name string) (*cairn.Context, error) {
	return s.getContext(ctx, s.pool, org, name, "")
}

const contextColumns = `o.name, c.name, c.description, c.tags, c.redaction, c.builtin, c.created_at, c.updated_at, c.size, c.root`

func (s *Store) getContext(ctx context.Context, q querier, org, name, lock string) (*cairn.Context, error) {
	row := q.QueryRow(ctx, `SELECT `+contextColumns+` FROM contexts c JOIN orgs o ON o.id = c.org_id
		WHERE o.name = $1 AND c.name = $2`+lock, org, name)
	c, err := scanContext(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "context %q not found in org %q", name, org)
	}
	return c, dbErr("get context", err)
}

// ListContexts implements cairn.Store.
func (s *Store) ListContexts(ctx context.Context, org string) ([]*cairn.Context, error) {
	if _, err := s.orgID(ctx, s.pool, org); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+contextColumns+` FROM contexts c JOIN orgs o ON o.id = c.org_id
		WHERE o.name = $1 ORDER BY c.name`, org)
	if err != nil {
		return nil, dbErr("list contexts", err)
	}
	defer rows.Close()
	var out []*cairn.Context
	for rows.Next() {
		c, err := scanContext(rows)
		if err != nil {
			return nil, dbErr("list contexts", err)
		}
		out = append(out, c)
	}
	return out, dbErr("list contexts", rows.Err())
}

// UpdateContext implements cairn.Store. It locks the context row like an
// append does (FOR NO KEY UPDATE would not wait for one): edits are rare.
func (s *Store) UpdateContext(ctx context.Context, org, name string, u cairn.ContextUpdate) (*cairn.Context, error) {
	var out *cairn.Context
	err := s.inTx(ctx, "update context", func(tx pgx.Tx) error {
		c, err := s.getContext(ctx, tx, org, name, " FOR UPDATE OF c")
		if err != nil {
			return err
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
			return err
		}
		ref, err := s.resolve(ctx, tx, org, name)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE contexts SET description = $2, tags = $3, redaction = $4, updated_at = $5 WHERE id = $1`,
			ref.id, c.Description, tags, redaction, s.cfg.Now().UTC()); err != nil {
			return fmt.Errorf("update context: %w", err)
		}
		out, err = s.getContext(ctx, tx, org, name, "")
		return err
	})
	return out, err
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

func scanContext(row pgx.Row) (*cairn.Context, error) {
	var c cairn.Context
	var tags, redaction []byte
	var root []byte
	if err := row.Scan(&c.Org, &c.Name, &c.Description, &tags, &redaction, &c.Builtin, &c.CreatedAt, &c.UpdatedAt, &c.Size, &root); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(tags, &c.Tags); err != nil {
		return nil, fmt.Errorf("decode tags: %w", err)
	}
	if err := json.Unmarshal(redaction, &c.Redaction); err != nil {
		return nil, fmt.Errorf("decode redaction: %w", err)
	}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	copy(c.Root[:], root)
	return &c, nil
}

// CreateAPIKey implements cairn.Store.
func (s *Store) CreateAPIKey(ctx context.Context, k *cairn.APIKey) error {
	orgID, err := s.orgID(ctx, s.pool, k.Org)
	if err != nil {
		return err
	}
	kind := k.Kind
	if kind == "" {
		kind = cairn.KeyKindAPI
	}
	var principal any
	if k.PrincipalID != "" {
		principal = k.PrincipalID
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO api_keys (id, org_id, name, prefix, hash, admin, created_at, expires_at, revoked_at, principal_id, kind)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, k.ID, orgID, k.Name, k.Prefix, k.Hash[:], k.Admin,
		k.CreatedAt.UTC(), ts(k.ExpiresAt), ts(k.RevokedAt), principal, kind)
	switch pgCode(err) {
	case uniqueViolation:
		return cairn.Errorf(cairn.EConflict, "api key already exists")
	case foreignKeyViolation:
		return cairn.Errorf(cairn.ENotFound, "principal %q not found", k.PrincipalID)
	}
	return dbErr("insert api key", err)
}

// LookupAPIKey implements cairn.Store.
func (s *Store) LookupAPIKey(ctx context.Context, hash [32]byte) (*cairn.APIKey, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+`
		FROM api_keys k JOIN orgs o ON o.id = k.org_id WHERE k.hash = $1`, hash[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "api key not found")
	}
	if err != nil {
		return nil, dbErr("lookup api key", err)
	}
	k.Hash = hash
	return k, nil
}

const keyColumns = `k.id, o.name, k.name, k.prefix, k.admin, k.created_at, k.expires_at, k.revoked_at, k.principal_id, k.kind`

// scanKey scans keyColumns (the hash is not among them).
func scanKey(row pgx.Row) (*cairn.APIKey, error) {
	var k cairn.APIKey
	var expires, revoked *time.Time
	var principal *string
	if err := row.Scan(&k.ID, &k.Org, &k.Name, &k.Prefix, &k.Admin, &k.CreatedAt, &expires, &revoked, &principal, &k.Kind); err != nil {
		return nil, err
	}
	if principal != nil {
		k.PrincipalID = *principal
	}
	k.CreatedAt = k.CreatedAt.UTC()
	k.ExpiresAt, k.RevokedAt = fromTS(expires), fromTS(revoked)
	return &k, nil
}

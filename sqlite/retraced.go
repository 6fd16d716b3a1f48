package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/retraced"
)

// The Retraced viewer descriptors and enterprise tokens (retraced.State)
// live in the log database with everything else: one backup holds them, and
// the PostgreSQL engine keeps them the same way for every node.

var _ retraced.State = (*Store)(nil)

func (s *Store) PutViewer(ctx context.Context, d *retraced.ViewerDescriptor) error {
	orgID, err := s.orgID(ctx, s.w, d.Org)
	if err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.txErr("begin viewer", err)
	}
	defer tx.Rollback()
	// Descriptors older than their lifetime are of no use; each put prunes.
	if _, err := tx.ExecContext(ctx, `DELETE FROM retraced_viewers WHERE created_at < ?`,
		micros(time.Now().Add(-retraced.ViewerTTL))); err != nil {
		return s.txErr("prune viewers", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO retraced_viewers
		(id, org_id, context, group_id, actor_id, target_id, is_admin, view_log_action, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET org_id = excluded.org_id, context = excluded.context,
			group_id = excluded.group_id, actor_id = excluded.actor_id, target_id = excluded.target_id,
			is_admin = excluded.is_admin, view_log_action = excluded.view_log_action, created_at = excluded.created_at`,
		d.ID, orgID, d.Context, d.GroupID, d.ActorID, d.TargetID, d.IsAdmin, d.ViewLogAction, micros(d.Created)); err != nil {
		return s.txErr("insert viewer", err)
	}
	return s.txErr("commit viewer", tx.Commit())
}

func (s *Store) GetViewer(ctx context.Context, id string) (*retraced.ViewerDescriptor, error) {
	d := retraced.ViewerDescriptor{ID: id}
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT o.name, v.context, v.group_id, v.actor_id, v.target_id,
		v.is_admin, v.view_log_action, v.created_at
		FROM retraced_viewers v JOIN orgs o ON o.id = v.org_id WHERE v.id = ?`, id).
		Scan(&d.Org, &d.Context, &d.GroupID, &d.ActorID, &d.TargetID, &d.IsAdmin, &d.ViewLogAction, &created)
	if err == nil && time.Since(fromMicros(created)) > retraced.ViewerTTL {
		err = sql.ErrNoRows
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "viewer token not found or expired")
	}
	if err != nil {
		return nil, s.txErr("read viewer", err)
	}
	d.Created = fromMicros(created)
	return &d, nil
}

func (s *Store) DeleteViewers(ctx context.Context, org, groupID, actorID string) error {
	orgID, err := s.orgID(ctx, s.w, org)
	if cairn.ErrorCode(err) == cairn.ENotFound {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `DELETE FROM retraced_viewers WHERE org_id = ? AND group_id = ? AND actor_id = ?`,
		orgID, groupID, actorID)
	return s.txErr("delete viewers", err)
}

func (s *Store) PutEnterprise(ctx context.Context, t *retraced.EnterpriseToken) error {
	orgID, err := s.orgID(ctx, s.w, t.Org)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO retraced_enterprise_tokens
		(token_hash, token, org_id, context, group_id, display_name, view_log_action, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (token_hash) DO UPDATE SET org_id = excluded.org_id, context = excluded.context,
			group_id = excluded.group_id, display_name = excluded.display_name,
			view_log_action = excluded.view_log_action, created_at = excluded.created_at`,
		retraced.TokenKey(t.Token), t.Token, orgID, t.Context, t.GroupID, t.DisplayName, t.ViewLogAction, micros(t.Created))
	return s.txErr("insert enterprise token", err)
}

const selectEnterprise = `SELECT t.token, o.name, t.context, t.group_id, t.display_name, t.view_log_action, t.created_at
	FROM retraced_enterprise_tokens t JOIN orgs o ON o.id = t.org_id`

func scanEnterprise(sc interface{ Scan(...any) error }) (*retraced.EnterpriseToken, error) {
	var t retraced.EnterpriseToken
	var created int64
	if err := sc.Scan(&t.Token, &t.Org, &t.Context, &t.GroupID, &t.DisplayName, &t.ViewLogAction, &created); err != nil {
		return nil, err
	}
	t.Created = fromMicros(created)
	return &t, nil
}

func (s *Store) GetEnterprise(ctx context.Context, token string) (*retraced.EnterpriseToken, error) {
	t, err := scanEnterprise(s.r.QueryRowContext(ctx, selectEnterprise+` WHERE t.token_hash = ?`, retraced.TokenKey(token)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "enterprise token not found")
	}
	if err != nil {
		return nil, s.txErr("read enterprise token", err)
	}
	return t, nil
}

func (s *Store) ListEnterprise(ctx context.Context, org, groupID string) ([]*retraced.EnterpriseToken, error) {
	orgID, err := s.orgID(ctx, s.r, org)
	if cairn.ErrorCode(err) == cairn.ENotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, selectEnterprise+` WHERE t.org_id = ? AND t.group_id = ?
		ORDER BY t.created_at, t.token_hash`, orgID, groupID)
	if err != nil {
		return nil, s.txErr("list enterprise tokens", err)
	}
	defer rows.Close()
	var out []*retraced.EnterpriseToken
	for rows.Next() {
		t, err := scanEnterprise(rows)
		if err != nil {
			return nil, s.txErr("list enterprise tokens", err)
		}
		out = append(out, t)
	}
	return out, s.txErr("list enterprise tokens", rows.Err())
}

func (s *Store) DeleteEnterprise(ctx context.Context, org, groupID, token string) error {
	notFound := cairn.Errorf(cairn.ENotFound, "enterprise token not found")
	orgID, err := s.orgID(ctx, s.w, org)
	if cairn.ErrorCode(err) == cairn.ENotFound {
		return notFound
	}
	if err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM retraced_enterprise_tokens WHERE token_hash = ? AND org_id = ? AND group_id = ?`,
		retraced.TokenKey(token), orgID, groupID)
	if err != nil {
		return s.txErr("delete enterprise token", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return notFound
	}
	return nil
}

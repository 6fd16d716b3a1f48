package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/retraced"
	"github.com/jackc/pgx/v5"
)

// The Retraced viewer descriptors and enterprise tokens live in the
// database, so that every node sees the tokens any node made. Expiry is
// decided by this node's wall clock (time.Now), as retraced.FileState does:
// the descriptors are stamped with it.

var _ retraced.State = (*Store)(nil)

// PutViewer implements retraced.State: an upsert by id, which also prunes
// the descriptors older than retraced.ViewerTTL.
func (s *Store) PutViewer(ctx context.Context, d *retraced.ViewerDescriptor) error {
	orgID, err := s.orgID(ctx, s.pool, d.Org)
	if err != nil {
		return err
	}
	return s.inTx(ctx, "put viewer", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO retraced_viewers
			(id, org_id, context, group_id, actor_id, target_id, is_admin, view_log_action, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (id) DO UPDATE SET org_id = excluded.org_id, context = excluded.context,
				group_id = excluded.group_id, actor_id = excluded.actor_id, target_id = excluded.target_id,
				is_admin = excluded.is_admin, view_log_action = excluded.view_log_action, created_at = excluded.created_at`,
			d.ID, orgID, d.Context, d.GroupID, d.ActorID, d.TargetID, d.IsAdmin, d.ViewLogAction,
			d.Created.UTC().Truncate(time.Microsecond))
		if err != nil {
			return fmt.Errorf("upsert viewer: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM retraced_viewers WHERE created_at < $1`, viewerCutoff()); err != nil {
			return fmt.Errorf("prune viewers: %w", err)
		}
		return nil
	})
}

// viewerCutoff is the creation time before which a descriptor has expired.
func viewerCutoff() time.Time { return time.Now().Add(-retraced.ViewerTTL).UTC() }

// GetViewer implements retraced.State.
func (s *Store) GetViewer(ctx context.Context, id string) (*retraced.ViewerDescriptor, error) {
	var d retraced.ViewerDescriptor
	err := s.pool.QueryRow(ctx, `SELECT v.id, o.name, v.context, v.group_id, v.actor_id, v.target_id, v.is_admin,
			v.view_log_action, v.created_at
		FROM retraced_viewers v JOIN orgs o ON o.id = v.org_id WHERE v.id = $1 AND v.created_at >= $2`, id, viewerCutoff()).
		Scan(&d.ID, &d.Org, &d.Context, &d.GroupID, &d.ActorID, &d.TargetID, &d.IsAdmin, &d.ViewLogAction, &d.Created)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "viewer token not found or expired")
	}
	if err != nil {
		return nil, dbErr("get viewer", err)
	}
	d.Created = d.Created.UTC()
	return &d, nil
}

// DeleteViewers implements retraced.State.
func (s *Store) DeleteViewers(ctx context.Context, org, groupID, actorID string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM retraced_viewers
		WHERE org_id = (SELECT id FROM orgs WHERE name = $1) AND group_id = $2 AND actor_id = $3`, org, groupID, actorID)
	return dbErr("delete viewers", err)
}

// PutEnterprise implements retraced.State: an upsert keyed by the token.
func (s *Store) PutEnterprise(ctx context.Context, t *retraced.EnterpriseToken) error {
	orgID, err := s.orgID(ctx, s.pool, t.Org)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO retraced_enterprise_tokens
		(token_hash, token, org_id, context, group_id, display_name, view_log_action, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (token_hash) DO UPDATE SET org_id = excluded.org_id, context = excluded.context,
			group_id = excluded.group_id, display_name = excluded.display_name,
			view_log_action = excluded.view_log_action, created_at = excluded.created_at`,
		retraced.TokenKey(t.Token), t.Token, orgID, t.Context, t.GroupID, t.DisplayName, t.ViewLogAction,
		t.Created.UTC().Truncate(time.Microsecond))
	return dbErr("put enterprise token", err)
}

const enterpriseColumns = `e.token, o.name, e.context, e.group_id, e.display_name, e.view_log_action, e.created_at
	FROM retraced_enterprise_tokens e JOIN orgs o ON o.id = e.org_id`

func scanEnterprise(row pgx.Row) (*retraced.EnterpriseToken, error) {
	var t retraced.EnterpriseToken
	if err := row.Scan(&t.Token, &t.Org, &t.Context, &t.GroupID, &t.DisplayName, &t.ViewLogAction, &t.Created); err != nil {
		return nil, err
	}
	t.Created = t.Created.UTC()
	return &t, nil
}

// GetEnterprise implements retraced.State. The lookup is by the token's
// SHA-256, so it never compares the secret itself.
func (s *Store) GetEnterprise(ctx context.Context, token string) (*retraced.EnterpriseToken, error) {
	t, err := scanEnterprise(s.pool.QueryRow(ctx, `SELECT `+enterpriseColumns+` WHERE e.token_hash = $1`, retraced.TokenKey(token)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "enterprise token not found")
	}
	if err != nil {
		return nil, dbErr("get enterprise token", err)
	}
	return t, nil
}

// ListEnterprise implements retraced.State: oldest first.
func (s *Store) ListEnterprise(ctx context.Context, org, groupID string) ([]*retraced.EnterpriseToken, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+enterpriseColumns+` WHERE o.name = $1 AND e.group_id = $2
		ORDER BY e.created_at, e.token_hash`, org, groupID)
	if err != nil {
		return nil, dbErr("list enterprise tokens", err)
	}
	defer rows.Close()
	var out []*retraced.EnterpriseToken
	for rows.Next() {
		t, err := scanEnterprise(rows)
		if err != nil {
			return nil, dbErr("list enterprise tokens", err)
		}
		out = append(out, t)
	}
	return out, dbErr("list enterprise tokens", rows.Err())
}

// DeleteEnterprise implements retraced.State: ENotFound unless the token
// exists in that org and group.
func (s *Store) DeleteEnterprise(ctx context.Context, org, groupID, token string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM retraced_enterprise_tokens
		WHERE token_hash = $1 AND org_id = (SELECT id FROM orgs WHERE name = $2) AND group_id = $3`,
		retraced.TokenKey(token), org, groupID)
	if err != nil {
		return dbErr("delete enterprise token", err)
	}
	if tag.RowsAffected() == 0 {
		return cairn.Errorf(cairn.ENotFound, "enterprise token not found")
	}
	return nil
}

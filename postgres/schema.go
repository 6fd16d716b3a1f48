package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// A migration is one step of the schema, applied in one transaction.
type migration struct {
	name string
	sql  string
}

// migrations is append-only: never edit an entry that has shipped, add a
// new one. The cairn_migrations table records each applied version.
//
// Text columns that are compared or ranged over use COLLATE "C": byte
// order, the same answers as the embedded engine whatever the database's
// default collation, and cheaper comparisons.
var migrations = []migration{
	{name: "orgs, contexts, partitioned events, checkpoints, idempotency, api keys", sql: `
CREATE TABLE orgs (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name       text COLLATE "C" NOT NULL UNIQUE,
	created_at timestamptz NOT NULL
);

-- The commit clock of each org: the next global commit number (gid). An
-- append takes this row's lock just before it writes its rows and holds it
-- to COMMIT, so gids are handed out in commit order within an org: the
-- keyset cursor of every search (see append.go).
CREATE TABLE commit_clocks (
	org_id   bigint PRIMARY KEY REFERENCES orgs(id),
	next_gid bigint NOT NULL DEFAULT 1
);

CREATE TABLE contexts (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	org_id      bigint NOT NULL REFERENCES orgs(id),
	name        text COLLATE "C" NOT NULL,
	description text NOT NULL DEFAULT '',
	tags        jsonb NOT NULL DEFAULT '{}',
	redaction   jsonb NOT NULL DEFAULT '[]',
	builtin     boolean NOT NULL DEFAULT false,
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL,
	size        bigint NOT NULL DEFAULT 0,    -- committed tree size: the head, row-locked by appends
	root        bytea NOT NULL,               -- committed tree root
	signed_size bigint NOT NULL DEFAULT -1,   -- size of the latest checkpoint, -1 if none
	UNIQUE (org_id, name)
);

-- Events, partitioned by month of receipt (server clock; see partitions.go).
-- The leaf column holds the exact canonical bytes committed to the tree;
-- every other column is derived from it for searching. hashes holds the
-- tlog stored hashes written when the leaf was appended: 1 + (trailing one
-- bits of seq) hashes of 32 bytes, level 0 (the leaf hash) first. Stored
-- hash index i lives in the row of seq ((n+1) << level) - 1 at offset
-- level, where (level, n) = tlog.SplitStoredHashIndex(i).
--
-- A partitioned table's unique indexes must contain the partition key, so
-- (ctx_id, seq) and gid are unique by construction (the head lock and the
-- commit clock), not by an index.
CREATE TABLE events (
	org_id        bigint NOT NULL,
	ctx_id        bigint NOT NULL,
	seq           bigint NOT NULL,
	gid           bigint NOT NULL,
	id            uuid NOT NULL,
	received_time timestamptz NOT NULL,
	event_time    timestamptz NOT NULL,
	action        text COLLATE "C" NOT NULL,
	kind          text COLLATE "C" NOT NULL,
	outcome       text COLLATE "C" NOT NULL,
	actor_type    text COLLATE "C",
	actor_id      text COLLATE "C",
	actor_email   text COLLATE "C",
	target_type   text COLLATE "C",
	target_id     text COLLATE "C",
	group_id      text COLLATE "C",
	words         tsvector,            -- free text: title, description, names, changes
	leaf          bytea NOT NULL,
	hashes        bytea NOT NULL
) PARTITION BY RANGE (received_time);

-- A safety net: rows whose month has no partition yet land here instead of
-- failing the append. The engine creates months ahead, so it stays empty.
CREATE TABLE events_default PARTITION OF events DEFAULT;

CREATE INDEX events_seq    ON events (ctx_id, seq);
CREATE INDEX events_gid    ON events (org_id, gid);
CREATE INDEX events_ctx    ON events (ctx_id, gid);
CREATE INDEX events_action ON events (org_id, action, gid);
CREATE INDEX events_actor  ON events (org_id, actor_id, gid) WHERE actor_id IS NOT NULL;
CREATE INDEX events_target ON events (org_id, target_type, target_id, gid) WHERE target_id IS NOT NULL;
CREATE INDEX events_group  ON events (org_id, group_id, gid) WHERE group_id IS NOT NULL;
CREATE INDEX events_id     ON events (id);
CREATE INDEX events_words  ON events USING gin (words);
CREATE INDEX events_time   ON events USING brin (event_time);

-- Every signed checkpoint, insert-only (a note may gain signature lines).
CREATE TABLE checkpoints (
	ctx_id    bigint NOT NULL REFERENCES contexts(id),
	size      bigint NOT NULL,
	root      bytea NOT NULL,
	note      bytea NOT NULL,
	signed_at timestamptz NOT NULL,
	PRIMARY KEY (ctx_id, size)
);

CREATE TABLE idempotency (
	ctx_id       bigint NOT NULL REFERENCES contexts(id),
	key          text COLLATE "C" NOT NULL,
	request_hash bytea NOT NULL,
	results      jsonb NOT NULL,    -- [{id, seq}]
	created_at   timestamptz NOT NULL,
	PRIMARY KEY (ctx_id, key)
);

CREATE TABLE api_keys (
	id         text PRIMARY KEY,
	org_id     bigint NOT NULL REFERENCES orgs(id),
	name       text NOT NULL,
	prefix     text NOT NULL,
	hash       bytea NOT NULL UNIQUE,
	admin      boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL,
	expires_at timestamptz,
	revoked_at timestamptz
);

CREATE TABLE witness_configs (
	ctx_id     bigint PRIMARY KEY REFERENCES contexts(id),
	witnesses  jsonb NOT NULL,     -- [{"url", "key"}]
	quorum     integer NOT NULL,
	policy     text NOT NULL,
	updated_at timestamptz NOT NULL
);

-- Verified cosignatures; each line is also appended to its checkpoint's note.
CREATE TABLE cosignatures (
	ctx_id      bigint NOT NULL,
	size        bigint NOT NULL,
	witness     text COLLATE "C" NOT NULL,  -- the witness's verifier key
	line        bytea NOT NULL,
	cosigned_at timestamptz NOT NULL,       -- the timestamp inside the cosignature
	added_at    timestamptz NOT NULL,
	ord         bigint GENERATED ALWAYS AS IDENTITY,
	PRIMARY KEY (ctx_id, size, witness),
	FOREIGN KEY (ctx_id, size) REFERENCES checkpoints (ctx_id, size)
);

CREATE TABLE witness_status (
	ctx_id          bigint NOT NULL REFERENCES contexts(id),
	witness         text COLLATE "C" NOT NULL,
	size            bigint NOT NULL DEFAULT -1,
	last_success_at timestamptz,
	last_error_at   timestamptz,
	last_error_code text NOT NULL DEFAULT '',
	last_error      text NOT NULL DEFAULT '',
	PRIMARY KEY (ctx_id, witness)
);

-- One row per period a key was in use; at most one open period per key.
CREATE TABLE signing_keys (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	public_key bytea NOT NULL,
	added_at   timestamptz NOT NULL,
	retired_at timestamptz
);
CREATE UNIQUE INDEX signing_keys_in_use ON signing_keys (public_key) WHERE retired_at IS NULL;

CREATE TABLE forwarders (
	id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	org_id          bigint NOT NULL REFERENCES orgs(id),
	name            text COLLATE "C" NOT NULL,
	config          jsonb NOT NULL,  -- cairn.Forwarder, secrets included (needed to call the sink)
	created_at      timestamptz NOT NULL,
	updated_at      timestamptz NOT NULL,
	parked          boolean NOT NULL DEFAULT false,
	attempts        integer NOT NULL DEFAULT 0,
	last_success_at timestamptz,
	last_error_at   timestamptz,
	last_error_code text NOT NULL DEFAULT '',
	last_error      text NOT NULL DEFAULT '',
	UNIQUE (org_id, name)
);

-- One durable cursor per forwarder and context: the next seq to deliver.
CREATE TABLE forwarder_cursors (
	fwd_id   bigint NOT NULL REFERENCES forwarders(id) ON DELETE CASCADE,
	ctx_id   bigint NOT NULL REFERENCES contexts(id),
	next_seq bigint NOT NULL,
	PRIMARY KEY (fwd_id, ctx_id)
);

-- Defence in depth: the log is append-only even for someone who connects
-- with this engine's role. Privileges are the stronger fence: see
-- docs/postgres.md for what to grant.
CREATE FUNCTION cairn_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'cairn: % is append-only', TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END $$;

-- A checkpoint's note may only grow by signature lines; nothing else changes.
CREATE FUNCTION cairn_checkpoint_grows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.ctx_id IS DISTINCT FROM OLD.ctx_id OR NEW.size IS DISTINCT FROM OLD.size
		OR NEW.root IS DISTINCT FROM OLD.root OR NEW.signed_at IS DISTINCT FROM OLD.signed_at
		OR length(NEW.note) < length(OLD.note)
		OR substring(NEW.note FROM 1 FOR length(OLD.note)) IS DISTINCT FROM OLD.note THEN
		RAISE EXCEPTION 'cairn: checkpoints are append-only: a note only gains signature lines'
			USING ERRCODE = 'integrity_constraint_violation';
	END IF;
	RETURN NEW;
END $$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
	FOR EACH ROW EXECUTE FUNCTION cairn_append_only();
CREATE TRIGGER checkpoints_append_only BEFORE DELETE ON checkpoints
	FOR EACH ROW EXECUTE FUNCTION cairn_append_only();
CREATE TRIGGER checkpoints_note_grows BEFORE UPDATE ON checkpoints
	FOR EACH ROW EXECUTE FUNCTION cairn_checkpoint_grows();
CREATE TRIGGER cosignatures_append_only BEFORE UPDATE OR DELETE ON cosignatures
	FOR EACH ROW EXECUTE FUNCTION cairn_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
	FOR EACH STATEMENT EXECUTE FUNCTION cairn_append_only();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION cairn_append_only();
CREATE TRIGGER cosignatures_no_truncate BEFORE TRUNCATE ON cosignatures
	FOR EACH STATEMENT EXECUTE FUNCTION cairn_append_only();
`},
	// 2: access control (issue 4): principals (users, service accounts,
	// groups, workload identities), group memberships, policies, and keys
	// that act as a principal (API keys and login sessions). The same
	// model as the embedded engine's migration 5.
	{name: "access control: principals, group members, policies, keys of principals", sql: `
CREATE TABLE principals (
	id          text COLLATE "C" PRIMARY KEY,
	org_id      bigint NOT NULL REFERENCES orgs(id),
	kind        text COLLATE "C" NOT NULL,
	name        text COLLATE "C" NOT NULL,
	description text NOT NULL DEFAULT '',
	email       text NOT NULL DEFAULT '',
	password    text NOT NULL DEFAULT '',  -- argon2id PHC string, users only
	disabled    boolean NOT NULL DEFAULT false,
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL,
	UNIQUE (org_id, kind, name)
);

CREATE TABLE group_members (
	group_id  text COLLATE "C" NOT NULL REFERENCES principals(id),
	member_id text COLLATE "C" NOT NULL REFERENCES principals(id),
	PRIMARY KEY (group_id, member_id)
);
CREATE INDEX group_members_member ON group_members (member_id);

-- bindings: [{"permissions", "principals", "event_groups", "group_prefixes"}]
CREATE TABLE policies (
	org_id      bigint NOT NULL REFERENCES orgs(id),
	name        text COLLATE "C" NOT NULL,
	description text NOT NULL DEFAULT '',
	context     text COLLATE "C" NOT NULL,
	bindings    jsonb NOT NULL,
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL,
	PRIMARY KEY (org_id, name)
);

ALTER TABLE api_keys ADD COLUMN principal_id text COLLATE "C" REFERENCES principals(id);
ALTER TABLE api_keys ADD COLUMN kind text NOT NULL DEFAULT 'key';
CREATE INDEX api_keys_principal ON api_keys (principal_id) WHERE principal_id IS NOT NULL;
CREATE INDEX api_keys_org ON api_keys (org_id, created_at);

-- Defence in depth for the one UPDATE nodes may do on api_keys (revoking,
-- detaching a deleted principal): a revocation is never undone or moved,
-- and a key never changes to another principal.
CREATE FUNCTION cairn_key_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF (OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at)
		OR (NEW.principal_id IS NOT NULL AND NEW.principal_id IS DISTINCT FROM OLD.principal_id) THEN
		RAISE EXCEPTION 'cairn: a key revocation is final and a key keeps its principal'
			USING ERRCODE = 'integrity_constraint_violation';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER api_keys_update BEFORE UPDATE ON api_keys
	FOR EACH ROW EXECUTE FUNCTION cairn_key_update();
`},

	// Measured at 10 million events (docs/postgres.md): an actor-email
	// search walked the org's commit order for 170 ms, and failures of a
	// kind took 24 ms at p99. Failures are a few percent of events, so
	// their partial index costs little to keep.
	{name: "actor email and failure indexes", sql: `
CREATE INDEX events_email  ON events (org_id, actor_email, gid) WHERE actor_email IS NOT NULL;
CREATE INDEX events_failed ON events (org_id, gid) WHERE outcome = 'failure';
`},

	// Time marks (see timemarks.go): for each org and each second,
	// minute, hour and day of event_time, the smallest and largest gid of
	// the events in it, kept by appends in the same transaction. A search
	// with a time window walks only the stretch of the commit order its
	// events can be in (1.7 s at p99 for a window search at 10 million
	// events without them).
	{name: "time marks", sql: `
CREATE TABLE time_marks (
	org_id  bigint NOT NULL,
	level   smallint NOT NULL,  -- 0 second, 1 minute, 2 hour, 3 day (UTC)
	bucket  bigint NOT NULL,    -- floor(unix seconds of event_time / the level's seconds)
	min_gid bigint NOT NULL,
	max_gid bigint NOT NULL,
	PRIMARY KEY (org_id, level, bucket)
);
INSERT INTO time_marks (org_id, level, bucket, min_gid, max_gid)
	SELECT e.org_id, l.level, floor(extract(epoch FROM e.event_time) / l.size)::bigint, min(e.gid), max(e.gid)
	FROM events e CROSS JOIN (VALUES (0, 1), (1, 60), (2, 3600), (3, 86400)) AS l (level, size)
	GROUP BY 1, 2, 3;
`},

	// Retraced viewer descriptors and enterprise tokens (retraced.go),
	// shared by every node instead of kept in a file on each: a token made
	// on one node works on all. Ordinary mutable state, like forwarder
	// cursors.
	{name: "retraced viewers and enterprise tokens", sql: `
CREATE TABLE retraced_viewers (
	id              text COLLATE "C" PRIMARY KEY,
	org_id          bigint NOT NULL REFERENCES orgs(id),
	context         text COLLATE "C" NOT NULL DEFAULT '',
	group_id        text COLLATE "C" NOT NULL DEFAULT '',
	actor_id        text COLLATE "C" NOT NULL DEFAULT '',
	target_id       text COLLATE "C" NOT NULL DEFAULT '',
	is_admin        boolean NOT NULL DEFAULT false,
	view_log_action text NOT NULL DEFAULT '',
	created_at      timestamptz NOT NULL
);
CREATE INDEX retraced_viewers_actor   ON retraced_viewers (org_id, group_id, actor_id);
CREATE INDEX retraced_viewers_created ON retraced_viewers (created_at);

-- token_hash = SHA-256(token): a lookup never compares the secret itself.
-- The token is kept too, since Retraced lists a group's tokens.
CREATE TABLE retraced_enterprise_tokens (
	token_hash      bytea PRIMARY KEY,
	token           text NOT NULL,
	org_id          bigint NOT NULL REFERENCES orgs(id),
	context         text COLLATE "C" NOT NULL DEFAULT '',
	group_id        text COLLATE "C" NOT NULL DEFAULT '',
	display_name    text NOT NULL DEFAULT '',
	view_log_action text NOT NULL DEFAULT '',
	created_at      timestamptz NOT NULL
);
CREATE INDEX retraced_enterprise_group ON retraced_enterprise_tokens (org_id, group_id, created_at);
`},
}

// migrate applies the pending migrations. Nodes starting at once take a
// session advisory lock on the schema: the first applies, the others wait
// and then find nothing to do.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return dbErr("acquire", err)
	}
	defer conn.Release()
	key := lockKey("migrate", s.cfg.Schema)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		return dbErr("lock", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key)
	// Look before creating: a role without CREATE on the schema (a node
	// running with least privilege) must still start on a current schema.
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('cairn_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return dbErr("read schema version", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS cairn_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL)`); err != nil {
			return dbErr("create cairn_migrations", err)
		}
	}
	var version int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM cairn_migrations`).Scan(&version); err != nil {
		return dbErr("read schema version", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this binary (%d)", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		m := migrations[i]
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO cairn_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				i+1, m.name, s.cfg.Now().UTC().Truncate(time.Microsecond))
			return err
		})
		if err != nil {
			return dbErr(fmt.Sprintf("migration %d", i+1), err)
		}
	}
	return nil
}

// SchemaVersion returns the number of migrations applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM cairn_migrations`).Scan(&v)
	return v, dbErr("schema version", err)
}

// AppGrants are the privileges a node's role needs when it does not own
// the schema (docs/postgres.md, "Privileges"), for role cairn_app on
// schema cairn: no UPDATE, DELETE or TRUNCATE on the log tables, no DDL.
// Run them as the owner after the migrations.
const AppGrants = `
GRANT USAGE ON SCHEMA cairn TO cairn_app;
GRANT SELECT ON cairn_migrations TO cairn_app;
GRANT SELECT, INSERT ON events, cosignatures, idempotency, api_keys, orgs TO cairn_app;
GRANT UPDATE (revoked_at, principal_id) ON api_keys TO cairn_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON principals, group_members, policies TO cairn_app;
GRANT SELECT, INSERT, UPDATE (note) ON checkpoints TO cairn_app;
GRANT SELECT, INSERT, UPDATE ON contexts, commit_clocks, time_marks, witness_configs, witness_status, signing_keys TO cairn_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON forwarders, forwarder_cursors TO cairn_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON retraced_viewers, retraced_enterprise_tokens TO cairn_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA cairn TO cairn_app;
`

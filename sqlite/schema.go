package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// A migration is SQL, optionally followed by Go code in the same
// transaction (for data SQL cannot derive, such as index tokens).
type migration struct {
	sql  string
	code func(ctx context.Context, tx *sql.Tx) error
}

// migrations is append-only: never edit an entry that has shipped, add a new
// one. PRAGMA user_version records how many have been applied.
var migrations = []migration{
	// 1: orgs, contexts, events, the Merkle tree, checkpoints, idempotency, keys.
	{sql: `
CREATE TABLE orgs (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL
);

CREATE TABLE contexts (
	id          INTEGER PRIMARY KEY,
	org_id      INTEGER NOT NULL REFERENCES orgs(id),
	name        TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	tags        TEXT NOT NULL DEFAULT '{}',
	redaction   TEXT NOT NULL DEFAULT '[]',
	builtin     INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	size        INTEGER NOT NULL DEFAULT 0,   -- committed tree size
	root        BLOB NOT NULL,                -- committed tree root
	signed_size INTEGER NOT NULL DEFAULT -1,  -- size of the latest checkpoint, -1 if none
	UNIQUE (org_id, name)
);

-- gid is the global commit order: the keyset cursor of every search.
-- The leaf column holds the exact canonical bytes committed to the tree;
-- every other column is derived from it for searching.
CREATE TABLE events (
	gid         INTEGER PRIMARY KEY,
	org_id      INTEGER NOT NULL,
	ctx_id      INTEGER NOT NULL,
	seq         INTEGER NOT NULL,
	id          BLOB NOT NULL,
	event_time  INTEGER NOT NULL,
	action      TEXT NOT NULL,
	kind        TEXT NOT NULL,
	outcome     TEXT NOT NULL,
	actor_type  TEXT,
	actor_id    TEXT,
	actor_email TEXT,
	target_type TEXT,
	target_id   TEXT,
	group_id    TEXT,
	leaf        BLOB NOT NULL,
	-- The tlog stored hashes written when this leaf was appended:
	-- 1 + (trailing one bits of seq) hashes of 32 bytes, level 0 (the leaf
	-- hash) first. Stored hash index i lives in the row of seq
	-- ((n+1) << level) - 1 at offset level, where (level, n) =
	-- tlog.SplitStoredHashIndex(i).
	hashes      BLOB NOT NULL
);
CREATE UNIQUE INDEX events_seq ON events (ctx_id, seq);
CREATE INDEX events_id ON events (id);
CREATE INDEX events_action ON events (org_id, action, gid);
CREATE INDEX events_actor ON events (org_id, actor_id, gid) WHERE actor_id IS NOT NULL;
CREATE INDEX events_target ON events (org_id, target_type, target_id, gid) WHERE target_id IS NOT NULL;
CREATE INDEX events_group ON events (org_id, group_id, gid) WHERE group_id IS NOT NULL;

-- Free text over description, title, names and changes; rowid = events.gid.
CREATE VIRTUAL TABLE events_text USING fts5 (body, content='', detail=none);

-- Every signed checkpoint, insert-only.
CREATE TABLE checkpoints (
	ctx_id    INTEGER NOT NULL,
	size      INTEGER NOT NULL,
	root      BLOB NOT NULL,
	note      BLOB NOT NULL,
	signed_at INTEGER NOT NULL,
	PRIMARY KEY (ctx_id, size)
) WITHOUT ROWID;

CREATE TABLE idempotency (
	ctx_id       INTEGER NOT NULL,
	key          TEXT NOT NULL,
	request_hash BLOB NOT NULL,
	results      BLOB NOT NULL,  -- JSON [{id, seq}]
	created_at   INTEGER NOT NULL,
	PRIMARY KEY (ctx_id, key)
) WITHOUT ROWID;

CREATE TABLE api_keys (
	id         TEXT PRIMARY KEY,
	org_id     INTEGER NOT NULL REFERENCES orgs(id),
	name       TEXT NOT NULL,
	prefix     TEXT NOT NULL,
	hash       BLOB NOT NULL UNIQUE,
	admin      INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL DEFAULT 0,
	revoked_at INTEGER NOT NULL DEFAULT 0
);

-- Defence in depth: the log is append-only even for someone with SQL access
-- through this engine. (It is no protection against editing the file; the
-- Merkle tree and signed checkpoints are.)
CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
`},

	// 2: one FTS5 index for every filter (see index.go) replaces the
	// per-column B-tree indexes and the text-only FTS table.
	{sql: `
CREATE VIRTUAL TABLE events_index USING fts5 (body, content='', detail=none, columnsize=0);
-- Every transaction adds a segment; with small group commits the default
-- (merge at 4 segments per level) spent 45 % of the writer's time merging.
INSERT INTO events_index (events_index, rank) VALUES ('automerge', 16);
DROP INDEX events_action;
DROP INDEX events_actor;
DROP INDEX events_target;
DROP INDEX events_group;
DROP TABLE events_text;
`},

	// 3: witnessing (per-context witnesses, cosignatures, witness status)
	// and the checkpoint signing-key history. A checkpoint's note may now
	// grow by signature lines (cosignatures), and nothing else may change.
	{sql: `
CREATE TABLE witness_configs (
	ctx_id     INTEGER PRIMARY KEY REFERENCES contexts(id),
	witnesses  TEXT NOT NULL,     -- JSON [{"url", "key"}]
	quorum     INTEGER NOT NULL,
	policy     TEXT NOT NULL,
	updated_at INTEGER NOT NULL
);

-- Verified cosignatures; each line is also appended to its checkpoint's note.
CREATE TABLE cosignatures (
	ctx_id      INTEGER NOT NULL,
	size        INTEGER NOT NULL,
	witness     TEXT NOT NULL,     -- the witness's verifier key
	line        BLOB NOT NULL,
	cosigned_at INTEGER NOT NULL,  -- the timestamp inside the cosignature
	added_at    INTEGER NOT NULL,
	PRIMARY KEY (ctx_id, size, witness)
) WITHOUT ROWID;

CREATE TABLE witness_status (
	ctx_id          INTEGER NOT NULL,
	witness         TEXT NOT NULL,
	size            INTEGER NOT NULL DEFAULT -1,
	last_success_at INTEGER NOT NULL DEFAULT 0,
	last_error_at   INTEGER NOT NULL DEFAULT 0,
	last_error_code TEXT NOT NULL DEFAULT '',
	last_error      TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (ctx_id, witness)
) WITHOUT ROWID;

-- One row per period a key was in use; at most one open period per key.
CREATE TABLE signing_keys (
	id         INTEGER PRIMARY KEY,
	public_key BLOB NOT NULL,
	added_at   INTEGER NOT NULL,
	retired_at INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX signing_keys_in_use ON signing_keys (public_key) WHERE retired_at = 0;

DROP TRIGGER checkpoints_no_update;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
WHEN NEW.ctx_id IS NOT OLD.ctx_id OR NEW.size IS NOT OLD.size OR NEW.root IS NOT OLD.root
	OR NEW.signed_at IS NOT OLD.signed_at OR substr(CAST(NEW.note AS BLOB), 1, length(CAST(OLD.note AS BLOB))) IS NOT CAST(OLD.note AS BLOB)
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only: a note only gains signature lines'); END;
CREATE TRIGGER cosignatures_no_update BEFORE UPDATE ON cosignatures BEGIN SELECT RAISE(ABORT, 'cosignatures are append-only'); END;
CREATE TRIGGER cosignatures_no_delete BEFORE DELETE ON cosignatures BEGIN SELECT RAISE(ABORT, 'cosignatures are append-only'); END;
`},

	// 4: forwarders, their delivery state and their durable cursors (one
	// per forwarder and context: the next seq to deliver).
	{sql: `
CREATE TABLE forwarders (
	id              INTEGER PRIMARY KEY,
	org_id          INTEGER NOT NULL REFERENCES orgs(id),
	name            TEXT NOT NULL,
	config          TEXT NOT NULL,  -- JSON cairn.Forwarder, secrets included (needed to call the sink)
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	parked          INTEGER NOT NULL DEFAULT 0,
	attempts        INTEGER NOT NULL DEFAULT 0,
	last_success_at INTEGER NOT NULL DEFAULT 0,
	last_error_at   INTEGER NOT NULL DEFAULT 0,
	last_error_code TEXT NOT NULL DEFAULT '',
	last_error      TEXT NOT NULL DEFAULT '',
	UNIQUE (org_id, name)
);

CREATE TABLE forwarder_cursors (
	fwd_id   INTEGER NOT NULL REFERENCES forwarders(id) ON DELETE CASCADE,
	ctx_id   INTEGER NOT NULL REFERENCES contexts(id),
	next_seq INTEGER NOT NULL,
	PRIMARY KEY (fwd_id, ctx_id)
) WITHOUT ROWID;
`},

	// 5: access control (issue 4): principals (users, service accounts,
	// groups, workload identities), group memberships, policies, and keys
	// that act as a principal (API keys and login sessions).
	{sql: `
CREATE TABLE principals (
	id          TEXT PRIMARY KEY,
	org_id      INTEGER NOT NULL REFERENCES orgs(id),
	kind        TEXT NOT NULL,
	name        TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	email       TEXT NOT NULL DEFAULT '',
	password    TEXT NOT NULL DEFAULT '',  -- argon2id PHC string, users only
	disabled    INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	UNIQUE (org_id, kind, name)
);

CREATE TABLE group_members (
	group_id  TEXT NOT NULL REFERENCES principals(id),
	member_id TEXT NOT NULL REFERENCES principals(id),
	PRIMARY KEY (group_id, member_id)
) WITHOUT ROWID;
CREATE INDEX group_members_member ON group_members (member_id);

-- bindings: JSON [{"permissions", "principals", "event_groups", "group_prefixes"}]
CREATE TABLE policies (
	org_id      INTEGER NOT NULL REFERENCES orgs(id),
	name        TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	context     TEXT NOT NULL,
	bindings    TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	PRIMARY KEY (org_id, name)
) WITHOUT ROWID;

ALTER TABLE api_keys ADD COLUMN principal_id TEXT REFERENCES principals(id);
ALTER TABLE api_keys ADD COLUMN kind TEXT NOT NULL DEFAULT 'key';
CREATE INDEX api_keys_principal ON api_keys (principal_id) WHERE principal_id IS NOT NULL;
CREATE INDEX api_keys_org ON api_keys (org_id, created_at);
`},

	// 6: the search index moves to a database file of its own, written
	// beside the log (indexer.go), which rebuilds it from the events; the
	// log gets an identity so an index is never used with another log.
	{sql: `
DROP TABLE events_index;
CREATE TABLE identity (
	id     INTEGER PRIMARY KEY CHECK (id = 0),
	log_id BLOB NOT NULL
);
INSERT INTO identity (id, log_id) VALUES (0, randomblob(16));
`},

	// 7: Retraced viewer descriptors and enterprise tokens (retraced.go),
	// kept with everything else instead of in a file beside the database.
	{sql: `
CREATE TABLE retraced_viewers (
	id              TEXT PRIMARY KEY,
	org_id          INTEGER NOT NULL REFERENCES orgs(id),
	context         TEXT NOT NULL,
	group_id        TEXT NOT NULL,
	actor_id        TEXT NOT NULL,
	target_id       TEXT NOT NULL,
	is_admin        INTEGER NOT NULL,
	view_log_action TEXT NOT NULL,
	created_at      INTEGER NOT NULL
);
CREATE INDEX retraced_viewers_actor ON retraced_viewers (org_id, group_id, actor_id);
CREATE INDEX retraced_viewers_created ON retraced_viewers (created_at);

-- token_hash = SHA-256(token): the lookup never compares the secret itself.
-- The token is kept too, since Retraced lists a group's tokens.
CREATE TABLE retraced_enterprise_tokens (
	token_hash      BLOB PRIMARY KEY,
	token           TEXT NOT NULL,
	org_id          INTEGER NOT NULL REFERENCES orgs(id),
	context         TEXT NOT NULL,
	group_id        TEXT NOT NULL,
	display_name    TEXT NOT NULL,
	view_log_action TEXT NOT NULL,
	created_at      INTEGER NOT NULL
);
CREATE INDEX retraced_enterprise_group ON retraced_enterprise_tokens (org_id, group_id, created_at);
`},
}

func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var version int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this binary (%d)", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		m := migrations[i]
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if m.code != nil {
			if err := m.code(ctx, tx); err != nil {
				tx.Rollback()
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

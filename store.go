package cairn

import (
	"context"
	"time"
)

// Store is what an engine (sqlite, postgres) provides. Every method is scoped
// to one org; no method returns or changes another org's data. Engines must
// pass storetest.Run.
//
// Errors: methods return *Error values with ENotFound for a missing org,
// context or event, EConflict for duplicates, and EInvalid for bad arguments;
// anything else is an internal error.
type Store interface {
	Appender
	LogReader

	// CreateOrg creates an org and its built-in context atomically.
	// EConflict if it exists.
	CreateOrg(ctx context.Context, name string) (*Org, error)
	// ListOrgs returns every org by name.
	ListOrgs(ctx context.Context) ([]*Org, error)

	// CreateContext creates an empty audit context. EConflict if it exists,
	// ENotFound if the org does not.
	CreateContext(ctx context.Context, c *Context) (*Context, error)
	// GetContext returns a context with its current size and root.
	GetContext(ctx context.Context, org, name string) (*Context, error)
	// ListContexts returns an org's contexts ordered by name.
	ListContexts(ctx context.Context, org string) ([]*Context, error)
	// UpdateContext changes the editable fields of a context.
	UpdateContext(ctx context.Context, org, name string, u ContextUpdate) (*Context, error)

	// GetEvent returns one committed event by id. ENotFound if absent.
	GetEvent(ctx context.Context, org, context, id string) (*StoredEvent, error)
	// SearchEvents returns an org's committed events matching f, newest
	// (most recently committed) first.
	SearchEvents(ctx context.Context, org string, f Filter) (*Page, error)

	// CreateAPIKey stores a key (only its hash). EConflict on a duplicate hash.
	CreateAPIKey(ctx context.Context, k *APIKey) error
	// LookupAPIKey finds a key by the SHA-256 of its secret. ENotFound if absent.
	LookupAPIKey(ctx context.Context, hash [32]byte) (*APIKey, error)

	Close() error
}

// Appender commits events to context logs.
type Appender interface {
	// Append commits the requests in one durable transaction: when it
	// returns, every committed event survives a crash or power loss.
	// Within each context, entries receive contiguous sequence numbers in
	// request order, and the context's stored hashes, size and root are
	// updated in the same transaction.
	//
	// A request that cannot be applied (unknown context, idempotency key
	// reused with another body) gets an error in its result and writes
	// nothing; the others still commit. A non-nil error means nothing was
	// committed.
	Append(ctx context.Context, reqs []*AppendRequest) ([]AppendResult, error)
}

// AppendRequest is one API request's worth of events for one context.
type AppendRequest struct {
	Org     string
	Context string
	Entries []Entry
	// IdempotencyKey, if set, makes the request idempotent: a later request
	// with the same key and RequestHash gets the original results back
	// (Replayed), one with another hash gets EConflict.
	IdempotencyKey string
	RequestHash    [32]byte
}

// Entry is one validated event ready to commit. Event supplies the search
// columns; Leaf is its canonical form without the sequence number.
type Entry struct {
	Event *Event
	Leaf  Leaf
}

// AppendResult is the outcome of one AppendRequest.
type AppendResult struct {
	Err       error
	Replayed  bool
	Committed []Committed // one per entry, in order
}

// Committed identifies one committed event.
type Committed struct {
	ID       string   `json:"id"`
	Seq      int64    `json:"seq"`
	LeafHash [32]byte `json:"-"`
}

// StoredEvent is a committed event as stored: the exact leaf bytes and
// where they sit in the log.
type StoredEvent struct {
	Org      string
	Context  string
	Seq      int64
	ID       string
	LeafHash [32]byte
	Leaf     []byte
	// Cursor positions a search after this event (see Filter.Before).
	Cursor int64
}

// Filter selects events in SearchEvents. Zero values match everything.
type Filter struct {
	Context      string
	Action       string // exact
	ActionPrefix string // "user." matches "user.login"; from "user.*"
	Kind         string
	Outcome      string
	ActorID      string
	ActorType    string
	ActorEmail   string
	TargetType   string
	TargetID     string
	GroupID      string
	// GroupPrefix matches group ids under a path prefix at '/'
	// boundaries: "acme/finance" matches "acme/finance" and
	// "acme/finance/emea", not "acme/financex".
	GroupPrefix  string
	Since, Until time.Time // on event_time; Since inclusive, Until exclusive
	Text         string    // free text over description, title, names and changes
	// Before, if non-zero, returns only events committed before the one
	// whose Cursor it is: keyset paging that neither skips nor repeats
	// events while writes continue.
	Before int64
	Limit  int

	// The remaining fields are access control, set by the server, never
	// from a caller's query.

	// SkipBuiltin leaves out the org's built-in context unless Context
	// names it.
	SkipBuiltin bool
	// Scopes, if non-nil, limits the result to events that at least one
	// scope admits; an empty non-nil slice admits nothing.
	Scopes []ReadScope
}

// ReadScope admits the events of some contexts, optionally only those of
// some event groups (a principal's readAudit grants).
type ReadScope struct {
	// Contexts lists the admitted contexts; empty admits every context.
	Contexts []string
	// Groups and GroupPrefixes, if either is non-empty, admit only events
	// whose group id is one of Groups or lies under one of GroupPrefixes
	// (see Filter.GroupPrefix).
	Groups        []string
	GroupPrefixes []string
}

// Grouped reports whether the scope limits event groups.
func (s ReadScope) Grouped() bool { return len(s.Groups) > 0 || len(s.GroupPrefixes) > 0 }

// Admits reports whether the scope admits an event of context ctx and
// group id group.
func (s ReadScope) Admits(ctx, group string) bool {
	if len(s.Contexts) > 0 {
		ok := false
		for _, c := range s.Contexts {
			ok = ok || c == ctx
		}
		if !ok {
			return false
		}
	}
	if !s.Grouped() {
		return true
	}
	for _, g := range s.Groups {
		if g == group {
			return true
		}
	}
	for _, p := range s.GroupPrefixes {
		if GroupUnder(group, p) {
			return true
		}
	}
	return false
}

// GroupUnder reports whether group id g lies under path prefix p at a '/'
// boundary: g == p or g starts with p + "/". A trailing '/' on p is
// ignored; an empty p matches nothing.
func GroupUnder(g, p string) bool {
	for len(p) > 0 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	if p == "" || len(g) < len(p) || g[:len(p)] != p {
		return false
	}
	return len(g) == len(p) || g[len(p)] == '/'
}

// Page is one page of search results.
type Page struct {
	Items []*StoredEvent
	// Next is the Before value for the following page, 0 when there is none.
	Next int64
}

// LogReader reads a context's Merkle log.
type LogReader interface {
	// ReadHashes returns the stored hashes at the given tlog stored-hash
	// indexes (see golang.org/x/mod/sumdb/tlog.StoredHashIndex). ENotFound
	// if any index is past the end of the log.
	ReadHashes(ctx context.Context, org, context string, indexes []int64) ([][32]byte, error)
	// ReadLeaves returns the leaves with sequence numbers [start, end).
	ReadLeaves(ctx context.Context, org, context string, start, end int64) ([][]byte, error)

	// LatestCheckpoint returns the most recently signed checkpoint, or
	// ENotFound if none has been signed.
	LatestCheckpoint(ctx context.Context, org, context string) (*Checkpoint, error)
	// AddCheckpoint records a signed checkpoint. The table is insert-only:
	// EConflict if a checkpoint for a larger size exists, or one for the
	// same size with a different root.
	AddCheckpoint(ctx context.Context, org, context string, cp *Checkpoint) error
	// Checkpoints returns the signed checkpoints of a context whose sizes
	// lie in [from, to], smallest first, at most limit of them. Each Note is
	// the signed note exactly as recorded, including any cosignature lines
	// stored with it: readers must accept signatures from keys they do not
	// know. EInvalid unless 0 <= from <= to and limit > 0; ENotFound for an
	// unknown context (a context without checkpoints returns none).
	Checkpoints(ctx context.Context, org, context string, from, to int64, limit int) ([]*Checkpoint, error)
	// LeafIndex returns the sequence number of the leaf among the first size
	// leaves of a context whose RFC 6962 leaf hash is hash. ENotFound if
	// there is none (leaves carry their sequence number, so no two are
	// equal). Engines may answer in time linear in size when they keep no
	// index of leaf hashes.
	LeafIndex(ctx context.Context, org, context string, hash [32]byte, size int64) (int64, error)
	// UnsignedHeads returns every context of every org whose size differs
	// from its latest checkpoint's (or that has none): the signer's work
	// list. A head smaller than its checkpoint is listed so the signer can
	// refuse it loudly.
	UnsignedHeads(ctx context.Context) ([]Head, error)
}

// Head is a context's committed tree state.
type Head struct {
	Org     string
	Context string
	Size    int64
	Root    [32]byte
}

// Checkpoint is a signed tree head: the C2SP signed note of
// "<origin>\n<size>\n<base64 root>\n".
type Checkpoint struct {
	Size     int64
	Root     [32]byte
	Note     []byte
	SignedAt time.Time
}

// APIKey is a bearer credential. Only the SHA-256 of the secret is stored;
// Prefix (the first characters of the secret) identifies it to humans.
type APIKey struct {
	ID        string
	Org       string
	Name      string
	Prefix    string
	Hash      [32]byte
	Admin     bool
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
	RevokedAt time.Time // zero: active
	// PrincipalID is the principal the key acts as; empty for a key that
	// belongs to no principal (the bootstrap admin key).
	PrincipalID string
	// Kind is KeyKindAPI (or empty, the same) or KeyKindSession.
	Kind string
}

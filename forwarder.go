package cairn

import (
	"context"
	"time"
)

// Forwarder body formats.
const (
	FormatJSON = "json" // the canonical leaf, byte for byte
	FormatOCSF = "ocsf" // OCSF 1.x: API Activity, Authentication or Account Change
	FormatECS  = "ecs"  // an Elastic Common Schema document
	FormatCEF  = "cef"  // one ArcSight CEF line
)

// Forwarder streams every committed event of chosen contexts of one org to
// a sink, at least once and in order per context, from a durable cursor
// (see docs/forwarding.md).
type Forwarder struct {
	Org  string `json:"org"`
	Name string `json:"name"`
	// Contexts lists the forwarded audit contexts; empty means every
	// context of the org, including the built-in one and contexts created
	// later.
	Contexts []string `json:"contexts"`
	// ActionFilter and GroupFilter, if set, keep only events whose action
	// (group id) equals the filter or, for "prefix.*", starts with
	// "prefix.". Filtered-out events are skipped, not retried.
	ActionFilter string      `json:"action_filter,omitempty"`
	GroupFilter  string      `json:"group_filter,omitempty"`
	Sink         SinkConfig  `json:"sink"`
	Format       string      `json:"format"`
	Batch        BatchPolicy `json:"batch"`
	Retry        RetryPolicy `json:"retry"`
	// Enabled is false while the forwarder is paused.
	Enabled   bool      `json:"enabled"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SinkConfig names a sink type and holds its settings.
type SinkConfig struct {
	Type string `json:"type"`
	// Settings are the sink's settings as JSON values. Secret settings
	// (tokens, passwords, HMAC keys) are stored as given, because Cairn
	// needs them to call the sink, and are never returned by the API:
	// views replace them with SecretMask.
	Settings map[string]any `json:"settings"`
}

// SecretMask stands in for a secret setting in every view of a forwarder.
// Sent back in an update, it keeps the stored secret.
const SecretMask = "***"

// BatchPolicy bounds one delivery: at most MaxEvents events and MaxBytes
// bytes of formatted bodies, sent when full or when the oldest waiting
// event has waited MaxDelay.
type BatchPolicy struct {
	MaxEvents int           `json:"max_events"`
	MaxBytes  int           `json:"max_bytes"`
	MaxDelay  time.Duration `json:"max_delay"`
}

// RetryPolicy is a forwarder's retry budget: a failed delivery is retried
// after an exponential backoff with jitter between MinBackoff and
// MaxBackoff; after MaxAttempts consecutive failures the forwarder is
// parked until it is resumed. Nothing is ever dropped.
type RetryPolicy struct {
	MaxAttempts int           `json:"max_attempts"`
	MinBackoff  time.Duration `json:"min_backoff"`
	MaxBackoff  time.Duration `json:"max_backoff"`
}

// ForwarderState is what the dispatcher records about deliveries.
type ForwarderState struct {
	// Parked is set when the retry budget ran out; delivery stops until
	// the forwarder is resumed.
	Parked bool
	// Attempts counts consecutive failed deliveries (0 after a success).
	Attempts      int
	LastSuccess   time.Time
	LastErrorAt   time.Time
	LastErrorCode string
	LastError     string
}

// ForwarderCursor is the next sequence number a forwarder delivers from
// one context: every event below it was acknowledged by the sink.
type ForwarderCursor struct {
	Context string
	Next    int64
}

// ForwarderStore keeps forwarders, their delivery state and their cursors.
// Engines implement it beside Store, in the same database as the log, so a
// cursor lives next to the events it points into. Every method is scoped
// to one org; ENotFound for a missing org, forwarder or context.
type ForwarderStore interface {
	// CreateForwarder stores a new forwarder with no cursors (delivery
	// starts at seq 0 of every context) and a zero state. EConflict if
	// the org has a forwarder of that name.
	CreateForwarder(ctx context.Context, f *Forwarder) error
	// GetForwarder returns a forwarder with its secrets.
	GetForwarder(ctx context.Context, org, name string) (*Forwarder, error)
	// ListForwarders returns an org's forwarders by name.
	ListForwarders(ctx context.Context, org string) ([]*Forwarder, error)
	// AllForwarders returns every forwarder of every org, by org and name.
	AllForwarders(ctx context.Context) ([]*Forwarder, error)
	// UpdateForwarder replaces a forwarder's configuration (everything
	// but Org, Name and CreatedAt); its state and cursors are kept.
	UpdateForwarder(ctx context.Context, f *Forwarder) error
	// DeleteForwarder removes a forwarder with its state and cursors.
	DeleteForwarder(ctx context.Context, org, name string) error

	// ForwarderState returns a forwarder's delivery state.
	ForwarderState(ctx context.Context, org, name string) (ForwarderState, error)
	// SetForwarderState replaces a forwarder's delivery state.
	SetForwarderState(ctx context.Context, org, name string, st ForwarderState) error

	// Cursors returns a forwarder's cursors by context name. A context
	// never delivered from has no cursor (its next seq is 0).
	Cursors(ctx context.Context, org, name string) ([]ForwarderCursor, error)
	// AdvanceCursor moves one cursor from `from` to `to` after the sink
	// acknowledged the events in between, and in the same transaction
	// records the success: LastSuccess = at, Attempts = 0. It is a
	// compare-and-set: EConflict, changing nothing, if the stored cursor
	// is not `from` (a replay or another node moved it). EInvalid if to <
	// from.
	AdvanceCursor(ctx context.Context, org, name, context string, from, to int64, at time.Time) error
	// SetCursor moves one cursor unconditionally (replay). EInvalid if
	// next < 0.
	SetCursor(ctx context.Context, org, name, context string, next int64) error
}

// Lease is one node's hold on a named lease among the nodes that share a
// store: while a node holds a forwarder's lease, no other node delivers
// that forwarder (see forward.Leaser, which engines shared by several
// nodes implement).
type Lease interface {
	// Lost is closed when the lease may no longer be held (the session
	// that holds it failed): the holder must stop at once.
	Lost() <-chan struct{}
	// Release gives the lease up.
	Release()
}

// ReplayFrom says where a replay restarts delivery: from a sequence
// number, or from the first event received at or after a time. Context,
// if set, limits the replay to one context; otherwise every context of
// the forwarder is replayed.
type ReplayFrom struct {
	Context string
	Seq     int64
	Time    time.Time // used when non-zero
}

// ForwarderStatus is a forwarder's delivery status as the API shows it.
type ForwarderStatus struct {
	Org, Name string
	// State is "running", "backing_off", "parked" or "paused".
	State string
	ForwarderState
	// NextAttempt is when a backing-off forwarder retries (zero otherwise).
	NextAttempt time.Time
	Cursors     []CursorStatus
	// LagEvents and LagSeconds are the sums (events) and the maximum
	// (seconds) over the contexts.
	LagEvents  int64
	LagSeconds float64
}

// CursorStatus is one context's position and lag. LagEvents counts the
// committed events not yet delivered (filtered or not); LagSeconds is the
// age of the oldest of them (by received time), 0 when there is none.
type CursorStatus struct {
	Context    string
	Next       int64
	Size       int64
	LagEvents  int64
	LagSeconds float64
}

// Forwarder states.
const (
	ForwarderRunning    = "running"
	ForwarderBackingOff = "backing_off"
	ForwarderParked     = "parked"
	ForwarderPaused     = "paused"
)

// SinkAnswer is what a sink said to one delivery (e.g. "HTTP 200").
type SinkAnswer struct {
	// Acked is how many leading events of the batch the sink accepted.
	Acked int
	// Detail is the sink's answer, fit to show to the forwarder's owner
	// (a status line, a partition and offset); never a secret.
	Detail string
}

// ForwarderTest is the outcome of sending one synthetic event.
type ForwarderTest struct {
	OK     bool
	Answer string
	// ErrorCode and Error describe a failed delivery.
	ErrorCode string
	Error     string
	Took      time.Duration
}

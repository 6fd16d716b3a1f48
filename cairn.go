// Package cairn holds Cairn's domain: the audit event, orgs and audit contexts,
// the storage contracts the engines implement, and the error codes every layer
// speaks. It depends on the standard library only and never does I/O itself.
//
// The adapters (sqlite, postgres, httpapi, ingest, merkle, ...) import this
// package and never each other; cmd/cairn wires them together.
package cairn

import "time"

// BuiltinContext is the name of the audit context that exists in every org
// and records Cairn's own administrative actions. Nobody can write to it
// through the API.
const BuiltinContext = "cairn"

// DefaultOrg is the org created on first start.
const DefaultOrg = "default"

// MaxLeafSize is the largest canonical leaf the log accepts: entry bundles
// prefix each entry with a big-endian uint16 length (C2SP tlog-tiles).
const MaxLeafSize = 1<<16 - 1

// Event kinds.
const (
	KindCreate      = "create"
	KindRead        = "read"
	KindUpdate      = "update"
	KindDelete      = "delete"
	KindAccess      = "access"
	KindLogin       = "login"
	KindLoginFailed = "login_failed"
	KindOther       = "other"
)

// Outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// Event is one audit record in its normalised form. The JSON field names are
// the API contract; the canonical (RFC 8785) JSON of an Event is the leaf
// committed to the context's Merkle log.
//
// Seq is assigned when the event is committed and is part of the leaf, as are
// ID, Org, Context and ReceivedTime, so a leaf cannot be replayed into another
// log or position.
type Event struct {
	ID           string            `json:"id"`
	Org          string            `json:"org"`
	Context      string            `json:"context"`
	Seq          int64             `json:"seq"`
	EventTime    time.Time         `json:"event_time"`
	ReceivedTime time.Time         `json:"received_time"`
	Action       string            `json:"action"`
	Kind         string            `json:"kind"`
	Outcome      string            `json:"outcome"`
	Reason       string            `json:"reason,omitempty"`
	Actor        *Actor            `json:"actor,omitempty"`
	Target       *Target           `json:"target,omitempty"`
	Group        *Group            `json:"group,omitempty"`
	Changes      []Change          `json:"changes,omitempty"`
	Source       *Source           `json:"source,omitempty"`
	Title        string            `json:"title,omitempty"`
	Description  string            `json:"description,omitempty"`
	Component    string            `json:"component,omitempty"`
	Version      string            `json:"version,omitempty"`
	ExternalID   string            `json:"external_id,omitempty"`
	Fields       map[string]string `json:"fields,omitempty"`
	Metadata     map[string]any    `json:"metadata,omitempty"`
}

// Actor types.
const (
	ActorUser           = "user"
	ActorServiceAccount = "serviceaccount"
	ActorAPIToken       = "api_token"
	ActorSystem         = "system"
	ActorWorkload       = "workload"
	ActorAnonymous      = "anonymous"
)

// Actor is who performed the action.
type Actor struct {
	Type   string         `json:"type,omitempty"`
	ID     string         `json:"id,omitempty"`
	Name   string         `json:"name,omitempty"`
	Email  string         `json:"email,omitempty"`
	Claims map[string]any `json:"claims,omitempty"`
}

// Target is the object acted on ("resource" in Control Plane).
type Target struct {
	Type string         `json:"type,omitempty"`
	ID   string         `json:"id,omitempty"`
	Name string         `json:"name,omitempty"`
	Href string         `json:"href,omitempty"`
	Data map[string]any `json:"data,omitempty"`
}

// Group is the customer or domain an event belongs to (a Retraced group, a
// CISO Assistant folder).
type Group struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// Change is one field's old → new value. Old or New is nil when the field was
// added or removed (so a change from or to JSON null cannot be told apart
// from an absent value); after redaction in mask mode each value that is
// present holds "***".
type Change struct {
	Field string `json:"field"`
	Old   any    `json:"old,omitempty"`
	New   any    `json:"new,omitempty"`
}

// Source describes where the request came from.
type Source struct {
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	Location  string `json:"location,omitempty"`
}

// Org is the isolation boundary: every stored row carries its org and no
// query crosses orgs.
type Org struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Context is a named, append-only audit log inside an org: one Merkle tree
// with its own origin, size, root and signed checkpoints.
type Context struct {
	Org         string            `json:"org"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Tags        map[string]string `json:"tags"`
	Builtin     bool              `json:"builtin"`
	Redaction   []RedactionRule   `json:"redaction"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	// Size and Root describe the committed tree (not necessarily signed yet).
	Size int64    `json:"size"`
	Root [32]byte `json:"-"`
}

// Redaction modes.
const (
	RedactExclude = "exclude" // drop the field
	RedactMask    = "mask"    // keep the field, replace its value with "***"
)

// RedactionRule names a field (matched case-insensitively against object keys
// and change field names anywhere in the event's free-form data) and what to do
// with it before the leaf is built.
type RedactionRule struct {
	Field string `json:"field"`
	Mode  string `json:"mode"`
}

// ContextUpdate holds the editable fields of a context; nil means unchanged.
type ContextUpdate struct {
	Description *string
	Tags        *map[string]string
	Redaction   *[]RedactionRule
}

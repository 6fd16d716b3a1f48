// Package ingest turns what a client sends into what the log commits: it
// splits request bodies into events, decodes them strictly, validates and
// normalises them, applies redaction, builds the canonical RFC 8785 leaf and
// group-commits the results (Committer).
//
//	items, batch, err := ingest.SplitBody(body, contentType)
//	in, err := ingest.DecodeEvent(items[i])
//	e, err := ingest.Normalize(in, org, context, id, received, rules)
//	leaf, err := ingest.Canonical(e)
//
// This is the hot path of every write. Everything expensive happens in these
// four functions, before the group commit, so that the store only splices
// the sequence number into the leaf (see cairn.Leaf). They are pure: no I/O,
// no state between calls beyond pooled scratch buffers, safe for concurrent
// use.
//
// # Input rules
//
// DecodeEvent accepts I-JSON (RFC 7493) only: valid UTF-8, no lone surrogates
// in escapes, no duplicate member names at any depth, no trailing data and
// no nesting deeper than [MaxDepth]. Numbers are IEEE-754 doubles: an
// integer written without fraction or exponent, beyond ±2^53, that a double
// cannot hold exactly (such as 9007199254740993) is rejected and must be
// sent as a string; other numbers are rejected only when they overflow.
// Unknown members and
// the server-assigned members (id, org, context, seq, received_time) are
// rejected. JSON null is accepted for any optional member and means the
// same as leaving it out.
//
// Normalize enforces these limits, in bytes of UTF-8:
//
//	action                                        1–256, required
//	actor.type, target.type, changes[].field,
//	component, version, source.ip, fields keys    256
//	actor.id/name/email, target.id/name,
//	group.id/name, title, external_id,
//	source.request_id, source.location            1,024
//	target.href, source.user_agent, reason,
//	fields values                                 4,096
//	description                                   16,384
//
// None of these may contain control characters (C0, DEL, C1), except that
// reason, description and fields values may contain tab, CR and LF.
// Free-form data (actor.claims, target.data, metadata, changes[].old/new)
// has no per-value limit. Whatever the parts, the canonical leaf must fit
// [cairn.MaxLeafSize] (65,535 bytes) and the raw event [MaxEvent].
//
// # Errors
//
// Every rejection of client input is a *cairn.Error with code
// [cairn.EInvalid], or [cairn.ETooLarge] for size limits, whose message names
// the offending member by path (for example "actor.email: expected string"
// or `metadata["a.b"][2]: nested deeper than 32 levels`).
//
// # What this package must never do
//
// It never logs, and its error messages never quote, event values: events
// carry personal data and, before redaction, secrets. Messages name member
// paths and limits only. It never lets an unredacted value reach a leaf.
// Once Canonical has produced a leaf, nothing may re-serialise the event for
// verification: the leaf bytes are the record.
package ingest

// MaxBody is the largest request body the HTTP layer accepts for a write.
const MaxBody = 32 << 20

// MaxBatch is the largest number of events in one request body.
const MaxBatch = 10000

// MaxEvent is the largest raw JSON event DecodeEvent reads. It is larger
// than cairn.MaxLeafSize because whitespace, escapes and redacted members
// take space in the input that the canonical leaf does not need.
const MaxEvent = 1 << 20

// MaxDepth is the deepest JSON nesting DecodeEvent and Canonical accept,
// counting the event object itself as level 1.
const MaxDepth = 32

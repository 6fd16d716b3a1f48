package cairn

import (
	"context"
	"time"
)

// Witness policies: what a context's public checkpoint is while its
// witnesses have not cosigned the newest one.
const (
	// WitnessFailOpen serves each checkpoint as soon as the log signed it;
	// cosignatures are added to it as they arrive. The default.
	WitnessFailOpen = "fail-open"
	// WitnessFailClosed serves only the newest checkpoint that reached the
	// context's witness quorum.
	WitnessFailClosed = "fail-closed"
)

// MaxWitnesses bounds the witnesses of one context (C2SP signed-note
// verifiers must accept at least 16 signatures on a note; the log's own
// signatures need some of them).
const MaxWitnesses = 8

// Witness is one C2SP tlog-witness a context submits its checkpoints to.
type Witness struct {
	// URL is the witness's submission prefix: Cairn POSTs to
	// URL + "/add-checkpoint".
	URL string `json:"url"`
	// Key is the witness's C2SP tlog-cosignature verifier key,
	// "<name>+<8 hex key ID>+<base64(0x04 ‖ Ed25519 public key)>".
	Key string `json:"key"`
}

// WitnessConfig is a context's witnessing configuration. The zero value
// (no witnesses) means the context is not witnessed.
type WitnessConfig struct {
	Witnesses []Witness `json:"witnesses"`
	// Quorum is how many of Witnesses must cosign a checkpoint for it to
	// count as witnessed; 1 <= Quorum <= len(Witnesses) when there are
	// witnesses, 0 otherwise.
	Quorum int `json:"witness_quorum"`
	// Policy is WitnessFailOpen or WitnessFailClosed.
	Policy string `json:"witness_policy"`
}

// WitnessStatus is what Cairn last heard from one witness of a context.
type WitnessStatus struct {
	// Witness is the witness's verifier key (its identity).
	Witness string
	// Size is the tree size the witness is known to have cosigned or
	// reported (409) last: the "old" size of the next submission. -1 when
	// nothing is known.
	Size int64
	// LastSuccess is when the witness last returned a valid cosignature.
	LastSuccess time.Time
	// LastErrorAt, LastErrorCode and LastError describe the last failed
	// submission; they are kept after a later success (compare the times).
	LastErrorAt   time.Time
	LastErrorCode string
	LastError     string
}

// Cosignature is one witness's verified cosignature on a checkpoint.
type Cosignature struct {
	// Witness is the witness's verifier key.
	Witness string
	// Line is the signature line to append to the checkpoint note,
	// "— <name> <base64(key ID ‖ timestamp ‖ signature)>\n".
	Line []byte
	// Time is the timestamp inside the cosignature.
	Time time.Time
}

// SigningKey is one checkpoint signing key in the service's key history.
type SigningKey struct {
	// PublicKey is the Ed25519 public key (32 bytes).
	PublicKey []byte
	// AddedAt is when the service first signed with the key (this period).
	AddedAt time.Time
	// RetiredAt is when the service stopped signing with it; zero while
	// it is in use.
	RetiredAt time.Time
}

// WitnessStore keeps witness configuration, cosignatures, witness status
// and the signing-key history. Engines implement it beside Store; like
// Store, every method is scoped to one org's context and returns
// ENotFound for a missing org or context.
type WitnessStore interface {
	// WitnessConfig returns a context's witness configuration; the zero
	// value if none was set.
	WitnessConfig(ctx context.Context, org, context string) (WitnessConfig, error)
	// SetWitnessConfig replaces a context's witness configuration. The
	// caller has validated it.
	SetWitnessConfig(ctx context.Context, org, context string, c WitnessConfig) error
	// WitnessedContexts lists every context of every org that has at least
	// one witness configured.
	WitnessedContexts(ctx context.Context) ([]ContextRef, error)

	// AddCosignatures appends verified cosignatures to the stored note of
	// the checkpoint of the given size, so the stored (and served) note is
	// the checkpoint with every signature. A witness's cosignature is
	// recorded once per checkpoint: a second one from the same witness is
	// ignored. ENotFound if no checkpoint of that size exists.
	AddCosignatures(ctx context.Context, org, context string, size int64, cs []Cosignature) error
	// Cosigners returns the witnesses (verifier keys) that cosigned the
	// checkpoint of the given size, in the order they were recorded.
	Cosigners(ctx context.Context, org, context string, size int64) ([]string, error)
	// LatestCosignedCheckpoint returns the newest checkpoint cosigned by at
	// least quorum of the given witnesses. ENotFound if there is none.
	LatestCosignedCheckpoint(ctx context.Context, org, context string, witnesses []string, quorum int) (*Checkpoint, error)

	// SetWitnessStatus records the status of one witness of a context.
	SetWitnessStatus(ctx context.Context, org, context string, st WitnessStatus) error
	// WitnessStatuses returns the recorded status of each witness of a
	// context that was ever contacted, by witness key.
	WitnessStatuses(ctx context.Context, org, context string) ([]WitnessStatus, error)

	// SyncSigningKeys records that exactly the given public keys are in
	// use from now on: a key not yet in use gets a new history entry
	// added at now; a key in use that is not listed is retired at now.
	// It returns the whole history, oldest first.
	SyncSigningKeys(ctx context.Context, publicKeys [][]byte, now time.Time) ([]SigningKey, error)
	// SigningKeys returns the key history, oldest first.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
}

// ContextRef names one audit context.
type ContextRef struct {
	Org     string
	Context string
}

// WitnessReport is a context's witnessing state as the context API shows it.
type WitnessReport struct {
	// Witnesses holds one status per configured witness, in configuration
	// order; Size is -1 for a witness never heard from.
	Witnesses []WitnessStatus
	// SignedSize is the size of the newest signed checkpoint, -1 if none.
	SignedSize int64
	// WitnessedSize is the size of the newest checkpoint that reached the
	// quorum, -1 if none.
	WitnessedSize int64
}

package verify

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"filippo.io/torchwood"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Verifier checks the signatures of one log's checkpoints: C2SP
// tlog-checkpoint notes whose origin is the log's and that at least one of
// the log's keys signed. Signatures by other keys (witness cosignatures,
// keys this verifier was not given) are ignored, as C2SP signed-note
// requires.
type Verifier struct {
	origin string
	keys   []note.Verifier
	policy torchwood.Policy
}

// NewVerifier returns a Verifier for the given verifier keys
// ("<name>+<hex id>+<base64 key>", as golang.org/x/mod/sumdb/note parses
// them). origin defaults to the name of the keys, which must then all
// share it (a log signs under its origin; rotated keys keep the name).
func NewVerifier(vkeys []string, origin string) (*Verifier, error) {
	if len(vkeys) == 0 {
		return nil, errors.New("no verifier key")
	}
	v := &Verifier{origin: origin}
	var one []torchwood.Policy
	for _, k := range vkeys {
		nv, err := note.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("verifier key %q: %w", k, err)
		}
		if v.origin == "" {
			v.origin = nv.Name()
		}
		if origin == "" && nv.Name() != v.origin {
			return nil, fmt.Errorf("verifier keys name different logs (%q, %q); give the origin", v.origin, nv.Name())
		}
		v.keys = append(v.keys, nv)
		one = append(one, torchwood.SingleVerifierPolicy(nv))
	}
	v.policy = torchwood.ThresholdPolicy(2, torchwood.OriginPolicy(v.origin), torchwood.ThresholdPolicy(1, one...))
	return v, nil
}

// Origin returns the origin the Verifier requires.
func (v *Verifier) Origin() string { return v.origin }

// Policy returns the torchwood policy the Verifier applies: the origin
// and one signature by one of the log's keys.
func (v *Verifier) Policy() torchwood.Policy { return v.policy }

// Checkpoint is a checkpoint whose signature verified.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
	// Note is the signed note verbatim.
	Note []byte
	// Others counts signatures by keys the Verifier does not know
	// (witness cosignatures, for instance); they were not checked.
	Others int
}

// Checkpoint verifies a signed checkpoint. The error says why it is not
// valid; it is a verification failure, not an I/O error.
func (v *Verifier) Checkpoint(signed []byte) (*Checkpoint, error) {
	c, n, err := torchwood.VerifyCheckpoint(signed, v.policy)
	if err != nil {
		return nil, fmt.Errorf("checkpoint does not verify: %w", err)
	}
	if c.N < 0 {
		return nil, errors.New("checkpoint has a negative size")
	}
	if c.N == 0 && c.Hash != emptyRoot() {
		return nil, errors.New("empty checkpoint without the RFC 6962 empty root")
	}
	return &Checkpoint{Origin: c.Origin, Size: c.N, Root: c.Hash, Note: bytes.Clone(signed), Others: len(n.UnverifiedSigs)}, nil
}

// claimedSize returns the size line of a checkpoint that did not verify,
// for naming it in a report; -1 if there is none.
func claimedSize(signed []byte) int64 {
	text, _, ok := strings.Cut(string(signed), "\n\n")
	if !ok {
		return -1
	}
	c, err := torchwood.ParseCheckpoint(text + "\n")
	if err != nil {
		return -1
	}
	return c.N
}

func emptyRoot() tlog.Hash {
	var h tlog.Hash
	copy(h[:], rfc6962.DefaultHasher.EmptyRoot())
	return h
}

// ConsistencyResult is the outcome of [Consistency].
type ConsistencyResult struct {
	Origin string `json:"origin"`
	Old    int64  `json:"old_size"`
	New    int64  `json:"new_size"`
	Valid  bool   `json:"valid"`
	Reason string `json:"reason,omitempty"`
	// NewCheckpoint is the verified newer checkpoint (nil unless Valid).
	NewCheckpoint *Checkpoint `json:"-"`
}

// Consistency checks that the signed checkpoint newer extends older: both
// verify, and the RFC 6962 consistency proof (hashes, oldest tree's side
// first as RFC 9162 orders them) verifies with transparency-dev/merkle and
// with golang.org/x/mod/sumdb/tlog.
func (v *Verifier) Consistency(older, newer []byte, hashes []tlog.Hash) *ConsistencyResult {
	res := &ConsistencyResult{Origin: v.origin, Old: claimedSize(older), New: claimedSize(newer)}
	fail := func(format string, args ...any) *ConsistencyResult {
		res.Reason = fmt.Sprintf(format, args...)
		return res
	}
	a, err := v.Checkpoint(older)
	if err != nil {
		return fail("old %v", err)
	}
	b, err := v.Checkpoint(newer)
	if err != nil {
		return fail("new %v", err)
	}
	if err := VerifyConsistencyProof(a.Size, a.Root, b.Size, b.Root, hashes); err != nil {
		return fail("%v", err)
	}
	res.Valid, res.NewCheckpoint = true, b
	return res
}

// VerifyConsistencyProof verifies the consistency proof from the tree (m, rm) to
// the tree (n, rn) with both independent verifiers. m = 0 needs an empty
// proof; m = n needs an empty proof and equal roots.
func VerifyConsistencyProof(m int64, rm tlog.Hash, n int64, rn tlog.Hash, hashes []tlog.Hash) error {
	switch {
	case m < 0 || m > n:
		return fmt.Errorf("the old tree (size %d) is larger than the new one (size %d): a rollback", m, n)
	case m == n && rm != rn:
		return fmt.Errorf("two different trees of size %d: a fork", n)
	case m == 0 && len(hashes) != 0:
		return errors.New("a proof from the empty tree must be empty")
	case m == 0:
		return nil
	}
	raw := make([][]byte, len(hashes))
	for i := range hashes {
		raw[i] = hashes[i][:]
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(m), uint64(n), raw, rm[:], rn[:]); err != nil {
		return fmt.Errorf("consistency proof from size %d to %d does not verify (transparency-dev/merkle): %v", m, n, err)
	}
	if m == n {
		return nil // tlog.CheckTree wants n < t
	}
	if err := tlog.CheckTree(hashes, n, rn, m, rm); err != nil {
		return fmt.Errorf("consistency proof from size %d to %d does not verify (sumdb/tlog): %v", m, n, err)
	}
	return nil
}

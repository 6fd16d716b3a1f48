// Package merkle is Cairn's integrity core: it turns a context's stored
// hashes into tree roots and proofs, and signs checkpoints over them.
//
// All Merkle math is golang.org/x/mod/sumdb/tlog (RFC 6962, SHA-256) over
// the stored hashes an engine keeps through [cairn.LogReader]; this package
// adds no Merkle code of its own. Checkpoints are C2SP tlog-checkpoint
// bodies signed as C2SP signed notes with Ed25519 (golang.org/x/mod/sumdb/note).
// The origin and key name of a context's log is <host>/<org>/<context>
// ([Origin]); one Ed25519 key (or, during a key rotation, each of several
// keys) signs every context, and the per-origin key name gives each
// context its own key ID.
//
// The [Checkpointer] is the only component that signs tree heads. It must
// never sign a tree that is smaller than, forked from (same size, other
// root), or not provably consistent with the last checkpoint it signed for
// that context, nor a head whose root does not match the stored hashes:
// such a head is refused with a [cairn.EIntegrity] error and left for an
// operator. Signing two inconsistent checkpoints would be exactly the split
// view the log exists to rule out.
//
// Nothing in this package logs, formats into errors, or otherwise reveals a
// private key or a leaf's contents.
package merkle

import (
	"context"
	"fmt"

	"github.com/cairn-audit/cairn"
	"golang.org/x/mod/sumdb/tlog"
)

// Origin returns the checkpoint origin, which is also the signing key's
// name, of an audit context's log: "<host>/<org>/<context>".
//
// Origin does not validate its arguments; [Signer.Origin] does.
func Origin(host, org, context string) string {
	return host + "/" + org + "/" + context
}

// EmptyRoot returns the RFC 6962 root of the empty tree, SHA-256 of the
// empty string (47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=).
func EmptyRoot() [32]byte {
	h, _ := tlog.TreeHash(0, nil) // never reads hashes for n = 0
	return h
}

// LeafHash returns the RFC 6962 leaf hash SHA-256(0x00 ‖ leaf).
func LeafHash(leaf []byte) [32]byte {
	return tlog.RecordHash(leaf)
}

// HashReader adapts a context's stored hashes in r to a [tlog.HashReader].
// Every read uses ctx, so the reader must not outlive the operation it was
// made for. A read that returns the wrong number of hashes is an error.
func HashReader(ctx context.Context, r cairn.LogReader, org, contextName string) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		hs, err := r.ReadHashes(ctx, org, contextName, indexes)
		if err != nil {
			return nil, err
		}
		if len(hs) != len(indexes) {
			return nil, fmt.Errorf("read hashes: got %d hashes for %d indexes", len(hs), len(indexes))
		}
		out := make([]tlog.Hash, len(hs))
		for i, h := range hs {
			out[i] = h
		}
		return out, nil
	})
}

// TreeHash returns the root of the first size leaves of a context's log,
// computed from the stored hashes. Size 0 gives [EmptyRoot].
//
// Errors: EInvalid for a negative size; the reader's errors otherwise
// (a size beyond the stored log is whatever ReadHashes returns for missing
// indexes).
func TreeHash(ctx context.Context, r cairn.LogReader, org, contextName string, size int64) ([32]byte, error) {
	if size < 0 {
		return [32]byte{}, cairn.Errorf(cairn.EInvalid, "tree size %d is negative", size)
	}
	h, err := tlog.TreeHash(size, HashReader(ctx, r, org, contextName))
	if err != nil {
		return [32]byte{}, fmt.Errorf("tree hash at size %d: %w", size, err)
	}
	return h, nil
}

// ProveInclusion returns the RFC 6962 inclusion proof (audit path) of the
// leaf at index in the tree of the given size, ordered from the leaf's
// sibling upwards as RFC 9162 and C2SP tlog-proof expect.
//
// Errors: EInvalid unless 0 <= index < size; the reader's errors otherwise.
func ProveInclusion(ctx context.Context, r cairn.LogReader, org, contextName string, index, size int64) ([][32]byte, error) {
	if index < 0 || index >= size {
		return nil, cairn.Errorf(cairn.EInvalid, "leaf index %d is outside a tree of size %d", index, size)
	}
	p, err := tlog.ProveRecord(size, index, HashReader(ctx, r, org, contextName))
	if err != nil {
		return nil, fmt.Errorf("prove inclusion of %d in %d: %w", index, size, err)
	}
	return hashes(p), nil
}

// ProveConsistency returns the RFC 6962 consistency proof that the tree of
// size to extends the tree of size from. The proof is empty when from is 0
// or equals to.
//
// Errors: EInvalid unless 0 <= from <= to; the reader's errors otherwise.
func ProveConsistency(ctx context.Context, r cairn.LogReader, org, contextName string, from, to int64) ([][32]byte, error) {
	if from < 0 || from > to {
		return nil, cairn.Errorf(cairn.EInvalid, "cannot prove size %d consistent with size %d", to, from)
	}
	if from == 0 || from == to {
		return [][32]byte{}, nil
	}
	p, err := tlog.ProveTree(to, from, HashReader(ctx, r, org, contextName))
	if err != nil {
		return nil, fmt.Errorf("prove consistency of %d with %d: %w", to, from, err)
	}
	return hashes(p), nil
}

func hashes[S ~[]tlog.Hash](p S) [][32]byte {
	out := make([][32]byte, len(p))
	for i, h := range p {
		out[i] = h
	}
	return out
}

package merkle

import (
	"context"
	"fmt"

	"github.com/cairn-audit/cairn"
	"github.com/transparency-dev/formats/proof"
)

// ReceiptContentType is the media type Cairn serves receipts with. C2SP
// registers none; the format is text.
const ReceiptContentType = "text/plain; charset=utf-8"

// Receipt returns the C2SP tlog-proof of the leaf at index in the tree of
// the signed checkpoint cp: "c2sp.org/tlog-proof@v1", the index, the
// inclusion proof (leaf's sibling first), a blank line and cp's signed note
// verbatim, with whatever cosignatures it carries. Serialised by
// transparency-dev/formats' proof.TLogProof, so one file proves one event
// offline to anyone holding the log's verifier key.
//
// Errors: EInvalid unless 0 <= index < cp.Size; the reader's errors
// otherwise.
func Receipt(ctx context.Context, r cairn.LogReader, org, contextName string, index int64, cp *cairn.Checkpoint) ([]byte, error) {
	if cp == nil || len(cp.Note) == 0 {
		return nil, cairn.Errorf(cairn.EInvalid, "no checkpoint to build a receipt on")
	}
	hashes, err := ProveInclusion(ctx, r, org, contextName, index, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("receipt: %w", err)
	}
	p := proof.TLogProof{Index: uint64(index), Checkpoint: cp.Note, Hashes: make([][32]byte, len(hashes))}
	copy(p.Hashes, hashes)
	return p.Marshal(), nil
}

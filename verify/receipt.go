package verify

import (
	"encoding/base64"
	"errors"
	"fmt"

	"filippo.io/torchwood"
	"github.com/transparency-dev/formats/proof"
	mproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
)

// ReceiptResult is the outcome of [Verifier.Receipt].
type ReceiptResult struct {
	Origin   string `json:"origin"`
	Index    int64  `json:"index"`
	TreeSize int64  `json:"tree_size"`
	Root     string `json:"root"`
	LeafHash string `json:"leaf_hash"`
	// Cosignatures counts signatures by keys the verifier did not check
	// (witnesses); they neither help nor hurt.
	Cosignatures int    `json:"unchecked_signatures"`
	Valid        bool   `json:"valid"`
	Reason       string `json:"reason,omitempty"`
	// Checkpoint is the receipt's verified checkpoint (nil unless Valid).
	Checkpoint *Checkpoint `json:"-"`
}

// MaxReceiptSize bounds a receipt: 64 proof hashes and a checkpoint with
// many cosignatures fit in a few KiB.
const MaxReceiptSize = 1 << 20

// Receipt verifies a C2SP tlog-proof receipt for the entry leaf (the exact
// bytes committed to the log): parsed with transparency-dev/formats'
// proof.TLogProof, verified with torchwood.VerifyProof under the
// Verifier's policy (origin and a log signature; cosignatures by unknown
// keys are ignored) and, independently, with transparency-dev/merkle's
// inclusion verifier against the checkpoint's root.
func (v *Verifier) Receipt(leaf, receipt []byte) *ReceiptResult {
	rh := tlog.RecordHash(leaf)
	res := &ReceiptResult{Origin: v.origin, Index: -1, LeafHash: base64.StdEncoding.EncodeToString(rh[:])}
	fail := func(format string, args ...any) *ReceiptResult {
		res.Reason = fmt.Sprintf(format, args...)
		return res
	}
	if len(receipt) > MaxReceiptSize {
		return fail("receipt is larger than %d bytes", MaxReceiptSize)
	}
	var p proof.TLogProof
	if err := p.Unmarshal(receipt); err != nil {
		return fail("not a c2sp.org/tlog-proof@v1 receipt: %v", err)
	}
	if p.Index > 1<<62 {
		return fail("index %d is out of range", p.Index)
	}
	res.Index = int64(p.Index)
	cp, err := v.Checkpoint(p.Checkpoint)
	if err != nil {
		return fail("%v", err)
	}
	res.TreeSize, res.Root, res.Cosignatures = cp.Size, base64.StdEncoding.EncodeToString(cp.Root[:]), cp.Others
	if err := torchwood.VerifyProof(v.policy, rh, receipt); err != nil {
		var vre *torchwood.VerifyRecordError
		if errors.As(err, &vre) {
			return fail("the inclusion proof does not prove this entry at index %d in the tree of size %d", p.Index, cp.Size)
		}
		return fail("torchwood rejects the receipt: %v", err)
	}
	hashes := make([][]byte, len(p.Hashes))
	for i := range p.Hashes {
		hashes[i] = p.Hashes[i][:]
	}
	if err := mproof.VerifyInclusion(rfc6962.DefaultHasher, p.Index, uint64(cp.Size), rh[:], hashes, cp.Root[:]); err != nil {
		return fail("transparency-dev/merkle rejects the inclusion proof: %v", err)
	}
	res.Valid, res.Checkpoint = true, cp
	return res
}

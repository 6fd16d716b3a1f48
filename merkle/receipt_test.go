package merkle

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"filippo.io/torchwood"
	"github.com/cairn-audit/cairn"
	"github.com/transparency-dev/formats/proof"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// logPolicy is what a receipt verifier pins: the origin and the log's key.
func logPolicy(t *testing.T, s *Signer, origin string) torchwood.Policy {
	t.Helper()
	return torchwood.ThresholdPolicy(2, torchwood.OriginPolicy(origin),
		torchwood.SingleVerifierPolicy(checkpointVerifier(t, s, origin)))
}

// cosign appends a witness cosignature (C2SP tlog-cosignature, made by
// torchwood) to a signed checkpoint, as a witness would.
func cosign(t *testing.T, signed []byte, logV note.Verifier, w *torchwood.CosignatureSigner) []byte {
	t.Helper()
	n, err := note.Open(signed, note.VerifierList(logV))
	if err != nil {
		t.Fatal(err)
	}
	out, err := note.Sign(n, w)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReceipt(t *testing.T) {
	m := newMemLog()
	leaves := testLeaves(1000)
	head := m.appendLeaves(t, testOrg, testCtx, leaves...)
	s := testSigner(t)
	origin := Origin(testHost, testOrg, testCtx)
	signed, err := s.SignCheckpoint(origin, head.Size, head.Root)
	if err != nil {
		t.Fatal(err)
	}
	cp := &cairn.Checkpoint{Size: head.Size, Root: head.Root, Note: signed}
	policy := logPolicy(t, s, origin)
	ctx := t.Context()

	for _, i := range []int64{0, 1, 255, 256, 511, 999} {
		r, err := Receipt(ctx, m, testOrg, testCtx, i, cp)
		if err != nil {
			t.Fatalf("Receipt(%d): %v", i, err)
		}
		if !bytes.HasPrefix(r, []byte("c2sp.org/tlog-proof@v1\nindex ")) || !bytes.HasSuffix(r, signed) {
			t.Fatalf("receipt %d is not a tlog-proof ending in the checkpoint:\n%s", i, r)
		}
		var p proof.TLogProof
		if err := p.Unmarshal(r); err != nil {
			t.Fatalf("formats/proof cannot parse receipt %d: %v", i, err)
		}
		if p.Index != uint64(i) || !bytes.Equal(p.Checkpoint, signed) || !bytes.Equal(p.Marshal(), r) {
			t.Fatalf("receipt %d does not round-trip through formats/proof", i)
		}
		if err := torchwood.VerifyProof(policy, tlog.RecordHash(leaves[i]), r); err != nil {
			t.Fatalf("torchwood rejects receipt %d: %v", i, err)
		}
		// Another leaf, or this leaf at another index, is rejected.
		var vre *torchwood.VerifyRecordError
		if err := torchwood.VerifyProof(policy, tlog.RecordHash(leaves[(i+1)%1000]), r); !errors.As(err, &vre) {
			t.Fatalf("receipt %d accepted another leaf: %v", i, err)
		}
	}

	_, err = Receipt(ctx, m, testOrg, testCtx, 1000, cp)
	if cairn.ErrorCode(err) != cairn.EInvalid {
		t.Fatalf("receipt for an index the checkpoint does not cover: %v, want invalid", err)
	}

	t.Run("cosigned", func(t *testing.T) {
		_, wkey, _ := ed25519.GenerateKey(nil)
		w, err := torchwood.NewCosignatureSigner("witness.example/w1", wkey)
		if err != nil {
			t.Fatal(err)
		}
		cosigned := &cairn.Checkpoint{Size: cp.Size, Root: cp.Root, Note: cosign(t, signed, checkpointVerifier(t, s, origin), w)}
		r, err := Receipt(ctx, m, testOrg, testCtx, 7, cosigned)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(r), "— witness.example/w1 ") {
			t.Fatalf("receipt lost the cosignature:\n%s", r)
		}
		rh := tlog.RecordHash(leaves[7])
		// A verifier that knows only the log key ignores the cosignature.
		if err := torchwood.VerifyProof(policy, rh, r); err != nil {
			t.Fatalf("log-key-only verifier rejects a cosigned receipt: %v", err)
		}
		// One that requires the witness accepts it, and rejects the same
		// receipt without the cosignature.
		withWitness := torchwood.ThresholdPolicy(2, policy, torchwood.SingleVerifierPolicy(w.Verifier()))
		if err := torchwood.VerifyProof(withWitness, rh, r); err != nil {
			t.Fatalf("witness policy rejects a cosigned receipt: %v", err)
		}
		plain, _ := Receipt(ctx, m, testOrg, testCtx, 7, cp)
		if err := torchwood.VerifyProof(withWitness, rh, plain); err == nil {
			t.Fatal("witness policy accepted a receipt without the cosignature")
		}
	})
}

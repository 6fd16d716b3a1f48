package verify

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"filippo.io/torchwood"
	"github.com/transparency-dev/formats/proof"
	"golang.org/x/mod/sumdb/tlog"
)

// receiptFor builds a tlog-proof for entry i on the log's newest
// checkpoint with x/mod's prover and formats' serialiser.
func receiptFor(t *testing.T, l *testLog, i int64) []byte {
	t.Helper()
	n := int64(len(l.entries))
	p, err := tlog.ProveRecord(n, i, tlog.HashReaderFunc(l.readHashes))
	if err != nil {
		t.Fatal(err)
	}
	tp := proof.TLogProof{Index: uint64(i), Checkpoint: l.notes[len(l.notes)-1]}
	for _, h := range p {
		tp.Hashes = append(tp.Hashes, h)
	}
	return tp.Marshal()
}

func TestReceipt(t *testing.T) {
	l := growLog(t, 1000)
	v, err := NewVerifier([]string{l.vkey}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int64{0, 1, 255, 256, 999} {
		r := receiptFor(t, l, i)
		if res := v.Receipt(testEntry(i), r); !res.Valid || res.Index != i || res.TreeSize != 1000 {
			t.Fatalf("receipt %d: %+v", i, res)
		}
	}

	r := receiptFor(t, l, 300)
	leaf := testEntry(300)
	var tp proof.TLogProof
	if err := tp.Unmarshal(r); err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(p *proof.TLogProof)) []byte {
		c := tp
		c.Hashes = append([][32]byte(nil), tp.Hashes...)
		c.Checkpoint = bytes.Clone(tp.Checkpoint)
		f(&c)
		return c.Marshal()
	}
	other := newTestLog(t, testOrigin)
	other.add(1000)
	forged := other.sign() // same origin and tree, another key
	stranger := newTestLog(t, "other.example/log")
	stranger.entries, stranger.hashes = l.entries, l.hashes
	wrongOrigin := stranger.sign()
	flippedLeaf := bytes.Clone(leaf)
	flippedLeaf[3] ^= 1

	for name, tc := range map[string]struct {
		leaf, receipt []byte
	}{
		"leaf bit flipped":  {flippedLeaf, r},
		"another entry":     {testEntry(301), r},
		"proof bit flipped": {leaf, mutate(func(p *proof.TLogProof) { p.Hashes[2][7] ^= 0x10 })},
		"wrong index":       {leaf, mutate(func(p *proof.TLogProof) { p.Index = 301 })},
		"truncated proof":   {leaf, mutate(func(p *proof.TLogProof) { p.Hashes = p.Hashes[:len(p.Hashes)-1] })},
		"extended proof":    {leaf, mutate(func(p *proof.TLogProof) { p.Hashes = append(p.Hashes, p.Hashes[0]) })},
		"reordered proof": {leaf, mutate(func(p *proof.TLogProof) {
			p.Hashes[0], p.Hashes[1] = p.Hashes[1], p.Hashes[0]
		})},
		"root bit flipped": {leaf, mutate(func(p *proof.TLogProof) {
			lines := strings.Split(string(p.Checkpoint), "\n")
			root, _ := base64.StdEncoding.DecodeString(lines[2])
			root[0] ^= 1
			lines[2] = base64.StdEncoding.EncodeToString(root)
			p.Checkpoint = []byte(strings.Join(lines, "\n"))
		})},
		"bad signature": {leaf, mutate(func(p *proof.TLogProof) { p.Checkpoint[len(p.Checkpoint)-8] ^= 1 })},
		"unknown key":   {leaf, mutate(func(p *proof.TLogProof) { p.Checkpoint = forged })},
		"wrong origin":  {leaf, mutate(func(p *proof.TLogProof) { p.Checkpoint = wrongOrigin })},
		"not a receipt": {leaf, []byte("hello\n")},
		"trailing data": {leaf, append(bytes.Clone(r), "garbage\n"...)},
		"empty":         {leaf, nil},
	} {
		if res := v.Receipt(tc.leaf, tc.receipt); res.Valid || res.Reason == "" {
			t.Errorf("%s: accepted (%+v)", name, res)
		}
	}

	t.Run("cosignatures", func(t *testing.T) {
		_, wkey, _ := ed25519.GenerateKey(rand.Reader)
		w, _ := torchwood.NewCosignatureSigner("witness.example/w1", wkey)
		l2 := growLog(t, 50)
		l2.sign(l2.signer, w)
		v2, _ := NewVerifier([]string{l2.vkey}, "")
		res := v2.Receipt(testEntry(7), receiptFor(t, l2, 7))
		if !res.Valid || res.Cosignatures != 1 {
			t.Fatalf("cosigned receipt: %+v", res)
		}
	})
}

func TestConsistency(t *testing.T) {
	l := growLog(t, 300, 1000)
	v, _ := NewVerifier([]string{l.vkey}, "")
	p, err := tlog.ProveTree(1000, 300, tlog.HashReaderFunc(l.readHashes))
	if err != nil {
		t.Fatal(err)
	}
	if res := v.Consistency(l.notes[0], l.notes[1], p); !res.Valid || res.Old != 300 || res.New != 1000 {
		t.Fatalf("consistent checkpoints rejected: %+v", res)
	}
	if res := v.Consistency(l.notes[1], l.notes[1], nil); !res.Valid {
		t.Fatalf("a checkpoint is consistent with itself: %+v", res)
	}
	flip := func(p tlog.TreeProof, i int) tlog.TreeProof {
		c := append(tlog.TreeProof(nil), p...)
		c[i][0] ^= 1
		return c
	}
	other := newTestLog(t, testOrigin)
	other.add(1000)
	for name, tc := range map[string]struct {
		old, new []byte
		proof    tlog.TreeProof
	}{
		"proof bit flipped": {l.notes[0], l.notes[1], flip(p, 0)},
		"last hash flipped": {l.notes[0], l.notes[1], flip(p, len(p)-1)},
		"truncated proof":   {l.notes[0], l.notes[1], p[:len(p)-1]},
		"extended proof":    {l.notes[0], l.notes[1], append(append(tlog.TreeProof(nil), p...), p[0])},
		"swapped":           {l.notes[1], l.notes[0], p},
		"unknown key":       {l.notes[0], other.sign(), p},
		"no proof":          {l.notes[0], l.notes[1], nil},
	} {
		if res := v.Consistency(tc.old, tc.new, tc.proof); res.Valid || res.Reason == "" {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestState(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenState(dir)
	if err != nil {
		t.Fatal(err)
	}
	l := growLog(t, 100, 500)
	// First run: trust on first use, remembered.
	if r := verifyLog(t, l, Options{Keys: []string{l.vkey}, State: st}); !r.Valid() {
		t.Fatalf("first run:%s", problemsOf(r))
	}
	if rem, err := st.Load(testOrigin); err != nil || rem == nil || rem.Size != 500 {
		t.Fatalf("state after the first run: %+v, %v", rem, err)
	}
	// The log grew: fine, and the state moves on.
	l.add(100)
	l.sign()
	if r := verifyLog(t, l, Options{Keys: []string{l.vkey}, State: st}); !r.Valid() {
		t.Fatalf("grown log:%s", problemsOf(r))
	}

	// Rolled back to an older copy (size 500): a rollback.
	old := &testLog{t: t, origin: l.origin, signer: l.signer, vkey: l.vkey, missingFrom: -1,
		entries: l.entries[:500], hashes: l.hashes[:tlog.StoredHashCount(500)], notes: l.notes[:2]}
	r := verifyLog(t, old, Options{Keys: []string{l.vkey}, State: st})
	if r.Valid() || !hasProblem(r, CheckState, -1, 600) || !strings.Contains(problemsOf(r), "ROLLBACK") {
		t.Fatalf("rollback not reported:%s", problemsOf(r))
	}
	// Rolled back and appended past the remembered size: a fork.
	forked := &testLog{t: t, origin: l.origin, signer: l.signer, vkey: l.vkey, missingFrom: -1,
		entries: append([][]byte(nil), l.entries[:500]...), hashes: append([]tlog.Hash(nil), l.hashes[:tlog.StoredHashCount(500)]...),
		notes: append([][]byte(nil), l.notes[:2]...)}
	for i := int64(500); i < 700; i++ {
		e := []byte(`{"seq":` + string(rune('0')) + `}`)
		e = append(testEntry(i), e...)
		hs, _ := tlog.StoredHashes(i, e, tlog.HashReaderFunc(forked.readHashes))
		forked.hashes = append(forked.hashes, hs...)
		forked.entries = append(forked.entries, e)
	}
	forked.sign()
	r = verifyLog(t, forked, Options{Keys: []string{l.vkey}, State: st, CheckEntry: func(int64, []byte) error { return nil }})
	if r.Valid() || !hasProblem(r, CheckState, -1, 600) || !strings.Contains(problemsOf(r), "FORK") {
		t.Fatalf("fork not reported:%s", problemsOf(r))
	}
	// The state still holds the last good checkpoint.
	if rem, _ := st.Load(testOrigin); rem.Size != 600 {
		t.Fatalf("state advanced past a failure: size %d", rem.Size)
	}
}

package merkle

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"filippo.io/torchwood"
	"github.com/cairn-audit/cairn"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

func newKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

// verifies reports whether the checkpoint note verifies with vkey alone,
// with x/mod note, transparency-dev/formats and torchwood.
func verifies(t *testing.T, msg []byte, origin, vkey string) bool {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	_, errNote := note.Open(msg, note.VerifierList(v))
	_, _, _, errFormats := log.ParseCheckpoint(msg, origin, v)
	_, _, errTorchwood := torchwood.VerifyCheckpoint(msg,
		torchwood.ThresholdPolicy(2, torchwood.OriginPolicy(origin), torchwood.SingleVerifierPolicy(v)))
	if (errNote == nil) != (errFormats == nil) || (errNote == nil) != (errTorchwood == nil) {
		t.Fatalf("verifiers disagree: note %v, formats %v, torchwood %v", errNote, errFormats, errTorchwood)
	}
	return errNote == nil
}

// TestKeyRotation signs a log's checkpoints before, during and after a
// rotation from key A to key B, as a server restarted with a new key set
// would: only A, then A and B (A primary), then B and A (B primary), then
// only B.
func TestKeyRotation(t *testing.T) {
	const org, name = "acme", "payments"
	origin := Origin(testHost, org, name)
	a, b := newKey(1), newKey(2)
	m := newMemLog()
	phases := []struct {
		name    string
		keys    []ed25519.PrivateKey
		primary ed25519.PrivateKey
		okA     bool // verifies with A's vkey alone
		okB     bool
		sigs    int
	}{
		{"before", []ed25519.PrivateKey{a}, a, true, false, 1},
		{"overlap, old primary", []ed25519.PrivateKey{a, b}, a, true, true, 2},
		{"overlap, new primary", []ed25519.PrivateKey{b, a}, b, true, true, 2},
		{"after", []ed25519.PrivateKey{b}, b, false, true, 1},
	}
	vkeyA, _ := VerifierKeyFor(origin, a.Public().(ed25519.PublicKey))
	vkeyB, _ := VerifierKeyFor(origin, b.Public().(ed25519.PublicKey))
	for i, p := range phases {
		t.Run(p.name, func(t *testing.T) {
			s, err := NewSigner(p.keys[0], testHost, p.keys[1:]...)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := s.VerifierKey(origin), mustVerifierKey(origin, p.primary); got != want {
				t.Errorf("VerifierKey = %s, want the primary's %s", got, want)
			}
			if got := s.VerifierKeys(origin); len(got) != len(p.keys) || got[0] != s.VerifierKey(origin) {
				t.Errorf("VerifierKeys = %v", got)
			}
			cp, err := NewCheckpointer(Config{Store: m, Signer: s})
			if err != nil {
				t.Fatal(err)
			}
			head := m.appendLeaves(t, org, name, testLeaves(3+i)...)
			c, err := cp.SignHead(t.Context(), head)
			if err != nil {
				t.Fatal(err)
			}
			if c.Size != head.Size {
				t.Fatalf("signed size %d, want %d", c.Size, head.Size)
			}
			if got := bytes.Count(c.Note, []byte("\n— ")); got != p.sigs {
				t.Errorf("%d signature lines, want %d:\n%s", got, p.sigs, c.Note)
			}
			if got := verifies(t, c.Note, origin, vkeyA); got != p.okA {
				t.Errorf("verifies with the old key alone: %v, want %v", got, p.okA)
			}
			if got := verifies(t, c.Note, origin, vkeyB); got != p.okB {
				t.Errorf("verifies with the new key alone: %v, want %v", got, p.okB)
			}
			// A verifier that knows both keys accepts every phase.
			va, _ := note.NewVerifier(vkeyA)
			vb, _ := note.NewVerifier(vkeyB)
			if _, err := note.Open(c.Note, note.VerifierList(va, vb)); err != nil {
				t.Errorf("verifier with both keys: %v", err)
			}
		})
	}

	// The refusal rules hold whatever the key set: a rolled-back or forked
	// head is refused by a signer holding the new keys too.
	s, err := NewSigner(b, testHost, a)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := NewCheckpointer(Config{Store: m, Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	signed := len(m.checkpoints(org, name))
	if _, err := cp.SignHead(t.Context(), m.truncate(t, org, name, 2)); cairn.ErrorCode(err) != cairn.EIntegrity {
		t.Fatalf("rolled-back head after rotation: %v, want integrity", err)
	}
	m.appendLeaves(t, org, name, bytes.Repeat([]byte("x"), 40))
	forked := m.appendLeaves(t, org, name, testLeaves(30)...)
	if _, err := cp.SignHead(t.Context(), forked); cairn.ErrorCode(err) != cairn.EIntegrity {
		t.Fatalf("forked head after rotation: %v, want integrity", err)
	}
	if got := len(m.checkpoints(org, name)); got != signed {
		t.Fatalf("%d checkpoints after refusals, want %d", got, signed)
	}
}

func TestNewSignerDuplicateKey(t *testing.T) {
	if _, err := NewSigner(newKey(1), testHost, newKey(2), newKey(1)); cairn.ErrorCode(err) != cairn.EInvalid {
		t.Fatalf("a key given twice: %v, want invalid", err)
	}
	if _, err := NewSigner(newKey(1), testHost, newKey(2)[:10]); cairn.ErrorCode(err) != cairn.EInvalid {
		t.Fatalf("a malformed extra key: %v, want invalid", err)
	}
	if _, err := VerifierKeyFor(testHost, []byte{1, 2}); cairn.ErrorCode(err) != cairn.EInvalid {
		t.Fatalf("VerifierKeyFor a short key: %v, want invalid", err)
	}
}

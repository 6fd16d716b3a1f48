package merkle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/torchwood"
	"github.com/cairn-audit/cairn"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

const testHost = "audit.example.com"

// testKey is a fixed key so that signatures (Ed25519 is deterministic) can
// be compared with golden files.
func testKey() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x42}, ed25519.SeedSize))
}

func testSigner(t testing.TB) *Signer {
	t.Helper()
	s, err := NewSigner(testKey(), testHost)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// keyID recomputes a signed-note Ed25519 key ID from its definition
// (integrity-formats.md §2), independently of x/mod.
func keyID(name string, pub ed25519.PublicKey) uint32 {
	msg := append([]byte(name), 0x0A, 0x01)
	sum := sha256.Sum256(append(msg, pub...))
	return binary.BigEndian.Uint32(sum[:4])
}

func TestOrigin(t *testing.T) {
	if got, want := Origin("audit.example.com", "acme", "payments"), "audit.example.com/acme/payments"; got != want {
		t.Errorf("Origin = %q, want %q", got, want)
	}
	s := testSigner(t)
	if got, err := s.Origin("acme", "payments"); err != nil || got != "audit.example.com/acme/payments" {
		t.Errorf("Signer.Origin = %q, %v", got, err)
	}
	for _, c := range []struct{ org, ctx string }{
		{"", "x"}, {"x", ""}, {"a/b", "c"}, {"a", "b/c"}, {"a+b", "c"}, {"a b", "c"},
		{"a\nb", "c"}, {"a\tb", "c"}, {"a", "\u00a0"}, {"\xff", "c"}, {"a\x00", "c"},
	} {
		if _, err := s.Origin(c.org, c.ctx); cairn.ErrorCode(err) != cairn.EInvalid {
			t.Errorf("Origin(%q, %q): error code %q, want %q", c.org, c.ctx, cairn.ErrorCode(err), cairn.EInvalid)
		}
	}
}

func TestNewSignerInvalid(t *testing.T) {
	for _, c := range []struct {
		name string
		key  ed25519.PrivateKey
		host string
	}{
		{"nil key", nil, testHost},
		{"short key", testKey()[:32], testHost},
		{"empty host", testKey(), ""},
		{"host with space", testKey(), "a b"},
		{"host with plus", testKey(), "a+b"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := NewSigner(c.key, c.host); cairn.ErrorCode(err) != cairn.EInvalid {
				t.Errorf("error code %q, want %q", cairn.ErrorCode(err), cairn.EInvalid)
			}
		})
	}
}

func TestVerifierKey(t *testing.T) {
	s := testSigner(t)
	pub := testKey().Public().(ed25519.PublicKey)
	ids := make(map[uint32]string)
	for _, origin := range []string{Origin(testHost, "acme", "payments"), Origin(testHost, "acme", "cairn"), Origin(testHost, "other", "payments")} {
		want, err := note.NewEd25519VerifierKey(origin, pub)
		if err != nil {
			t.Fatal(err)
		}
		vkey := s.VerifierKey(origin)
		if vkey != want {
			t.Errorf("VerifierKey(%q) = %q, note.NewEd25519VerifierKey = %q", origin, vkey, want)
		}
		// Independent decoding of <name>+<hex id>+<base64(0x01 ‖ pub)>.
		parts := strings.SplitN(vkey, "+", 3) // the base64 may hold '+'
		if len(parts) != 3 || parts[0] != origin {
			t.Fatalf("VerifierKey(%q) = %q: not <name>+<id>+<key>", origin, vkey)
		}
		id := keyID(origin, pub)
		if parts[1] != fmt.Sprintf("%08x", id) {
			t.Errorf("key ID in vkey = %s, SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pub)[:4] = %08x", parts[1], id)
		}
		if raw, _ := base64.StdEncoding.DecodeString(parts[2]); !bytes.Equal(raw, append([]byte{0x01}, pub...)) {
			t.Errorf("vkey key = %x, want 01 ‖ %x", raw, pub)
		}
		ns := s.NoteSigner(origin)
		if ns.Name() != origin || ns.KeyHash() != id {
			t.Errorf("NoteSigner(%q) = %q %08x, want %q %08x", origin, ns.Name(), ns.KeyHash(), origin, id)
		}
		if other, dup := ids[id]; dup {
			t.Errorf("origins %q and %q share key ID %08x", origin, other, id)
		}
		ids[id] = origin
	}
}

// TestXModNoteVector signs the example note of golang.org/x/mod/sumdb/note's
// documentation with its published key and compares it byte for byte.
func TestXModNoteVector(t *testing.T) {
	const (
		skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
		vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
		text = "If you think cryptography is the answer to your problem,\n" +
			"then you don't know what your problem is.\n"
		want = text + "\n" +
			"— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
	)
	key, err := parseKey(skey)
	if err != nil {
		t.Fatalf("parseKey: %v", err)
	}
	s, err := NewSigner(key, testHost)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.VerifierKey("PeterNeumann"); got != vkey {
		t.Errorf("VerifierKey = %q, want %q", got, vkey)
	}
	msg, err := note.Sign(&note.Note{Text: text}, s.NoteSigner("PeterNeumann"))
	if err != nil {
		t.Fatal(err)
	}
	if string(msg) != want {
		t.Errorf("signed note:\n%s\nwant:\n%s", msg, want)
	}
}

func checkpointVerifier(t testing.TB, s *Signer, origin string) note.Verifier {
	t.Helper()
	v, err := note.NewVerifier(s.VerifierKey(origin))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// verifyCheckpoint checks raw with three independent parsers and returns
// their errors: formats/log.ParseCheckpoint, torchwood.VerifyCheckpoint
// (origin + single verifier, 2 of 2) and note.Open followed by
// formats/log.Checkpoint.Unmarshal with an origin check.
func verifyCheckpoint(raw []byte, origin string, v note.Verifier, size int64, root [32]byte) [3]error {
	var errs [3]error
	check := func(gotOrigin string, gotSize uint64, gotRoot []byte) error {
		if gotOrigin != origin || gotSize != uint64(size) || !bytes.Equal(gotRoot, root[:]) {
			return fmt.Errorf("checkpoint says %q %d %x, want %q %d %x", gotOrigin, gotSize, gotRoot, origin, size, root)
		}
		return nil
	}
	if cp, _, _, err := log.ParseCheckpoint(raw, origin, v); err != nil {
		errs[0] = err
	} else {
		errs[0] = check(cp.Origin, cp.Size, cp.Hash)
	}
	policy := torchwood.ThresholdPolicy(2, torchwood.OriginPolicy(origin), torchwood.SingleVerifierPolicy(v))
	if cp, _, err := torchwood.VerifyCheckpoint(raw, policy); err != nil {
		errs[1] = err
	} else {
		errs[1] = check(cp.Origin, uint64(cp.N), cp.Hash[:])
	}
	if n, err := note.Open(raw, note.VerifierList(v)); err != nil {
		errs[2] = err
	} else {
		var cp log.Checkpoint
		if rest, err := cp.Unmarshal([]byte(n.Text)); err != nil {
			errs[2] = err
		} else if len(rest) != 0 {
			errs[2] = fmt.Errorf("unexpected extension lines %q", rest)
		} else {
			errs[2] = check(cp.Origin, cp.Size, cp.Hash)
		}
	}
	return errs
}

func TestSignCheckpoint(t *testing.T) {
	s := testSigner(t)
	origin := Origin(testHost, "acme", "payments")
	m := newMemLog()
	head := m.appendLeaves(t, "acme", "payments", testLeaves(5000)...)

	raw, err := s.SignCheckpoint(origin, head.Size, head.Root)
	if err != nil {
		t.Fatal(err)
	}
	body := log.Checkpoint{Origin: origin, Size: uint64(head.Size), Hash: head.Root[:]}.Marshal()
	text, sigs, ok := bytes.Cut(raw, []byte("\n\n"))
	if !ok || !bytes.Equal(append(text, '\n'), body) {
		t.Errorf("note text = %q, want formats/log.Checkpoint.Marshal() = %q", text, body)
	}
	// One signature line: "— <origin> <base64(key ID ‖ sig)>\n", sig over the body.
	line, ok := bytes.CutPrefix(sigs, []byte("— "+origin+" "))
	if !ok || bytes.Count(sigs, []byte("\n")) != 1 {
		t.Fatalf("signature block = %q", sigs)
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(string(line), "\n"))
	if err != nil || len(sig) != 4+ed25519.SignatureSize {
		t.Fatalf("signature = %q: %v", line, err)
	}
	pub := s.PublicKey()
	if got := binary.BigEndian.Uint32(sig); got != keyID(origin, pub) {
		t.Errorf("signature key ID %08x, want %08x", got, keyID(origin, pub))
	}
	if !ed25519.Verify(pub, body, sig[4:]) {
		t.Error("crypto/ed25519 rejects the signature over the checkpoint body")
	}
	v := checkpointVerifier(t, s, origin)
	for i, err := range verifyCheckpoint(raw, origin, v, head.Size, head.Root) {
		if err != nil {
			t.Errorf("verifier %d rejected the checkpoint: %v", i, err)
		}
	}
	golden(t, "checkpoint_5000.golden", raw)
}

func TestSignCheckpointEmpty(t *testing.T) {
	s := testSigner(t)
	origin := Origin(testHost, "acme", "payments")
	v := checkpointVerifier(t, s, origin)
	for _, root := range [][32]byte{{}, EmptyRoot()} {
		raw, err := s.SignCheckpoint(origin, 0, root)
		if err != nil {
			t.Fatal(err)
		}
		if want := origin + "\n0\n" + emptyRootB64 + "\n\n"; !strings.HasPrefix(string(raw), want) {
			t.Errorf("empty checkpoint = %q, want prefix %q", raw, want)
		}
		for i, err := range verifyCheckpoint(raw, origin, v, 0, EmptyRoot()) {
			if err != nil {
				t.Errorf("verifier %d rejected the empty checkpoint: %v", i, err)
			}
		}
	}
	if _, err := s.SignCheckpoint(origin, 0, [32]byte{1}); cairn.ErrorCode(err) != cairn.EInvalid {
		t.Errorf("size 0 with a non-empty root: error code %q, want %q", cairn.ErrorCode(err), cairn.EInvalid)
	}
	if _, err := s.SignCheckpoint(origin, -1, EmptyRoot()); cairn.ErrorCode(err) != cairn.EInvalid {
		t.Errorf("negative size: error code %q, want %q", cairn.ErrorCode(err), cairn.EInvalid)
	}
	for _, bad := range []string{"", "a b", "a+b", "a\nb"} {
		if _, err := s.SignCheckpoint(bad, 1, [32]byte{}); cairn.ErrorCode(err) != cairn.EInvalid {
			t.Errorf("origin %q: error code %q, want %q", bad, cairn.ErrorCode(err), cairn.EInvalid)
		}
	}
}

// TestCheckpointNegative: every independent verifier rejects a checkpoint
// for the wrong origin, from an unknown key, or altered in any way.
func TestCheckpointNegative(t *testing.T) {
	s := testSigner(t)
	origin := Origin(testHost, "acme", "payments")
	root := LeafHash([]byte("x"))
	raw, err := s.SignCheckpoint(origin, 1, root)
	if err != nil {
		t.Fatal(err)
	}
	v := checkpointVerifier(t, s, origin)

	otherKey, _ := GenerateKey(nil)
	other, _ := NewSigner(otherKey, testHost)
	otherOrigin := Origin(testHost, "acme", "other")
	// The same key's signature for another context is a different key ID.
	rawOtherOrigin, _ := s.SignCheckpoint(otherOrigin, 1, root)

	sigAt := bytes.LastIndex(raw, []byte(" ")) + 1
	flipSig := func(i int) []byte {
		b := bytes.Clone(raw)
		sig, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b[sigAt:])))
		sig[i] ^= 0x01
		return append(b[:sigAt], base64.StdEncoding.EncodeToString(sig)+"\n"...)
	}
	replace := func(old, new string) []byte {
		return bytes.Replace(raw, []byte(old), []byte(new), 1)
	}
	b64Root := base64.StdEncoding.EncodeToString(root[:])
	altRoot := flipped(root, 9)

	cases := []struct {
		name   string
		raw    []byte
		origin string
		v      note.Verifier
	}{
		{"expected another origin", raw, otherOrigin, v},
		{"signed for another origin", rawOtherOrigin, origin, v},
		{"unknown key, same name", raw, origin, checkpointVerifier(t, other, origin)},
		{"signature key ID byte flipped", flipSig(0), origin, v},
		{"signature first byte flipped", flipSig(4), origin, v},
		{"signature last byte flipped", flipSig(4 + ed25519.SignatureSize - 1), origin, v},
		{"size altered", replace("\n1\n", "\n2\n"), origin, v},
		{"root altered", replace(b64Root, base64.StdEncoding.EncodeToString(altRoot[:])), origin, v},
		{"origin altered", replace(origin+"\n", otherOrigin+"\n"), origin, v},
		{"extension line added", replace(b64Root+"\n", b64Root+"\nextra\n"), origin, v},
		{"signature removed", raw[:bytes.Index(raw, []byte("\n\n"))+2], origin, v},
		{"trailing garbage", append(bytes.Clone(raw), "garbage"...), origin, v},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for i, err := range verifyCheckpoint(c.raw, c.origin, c.v, 1, root) {
				if err == nil {
					t.Errorf("verifier %d accepted the checkpoint", i)
				}
			}
		})
	}
}

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

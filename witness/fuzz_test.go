package witness

import (
	"bytes"
	"crypto/rand"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// FuzzParseKey: any input is parsed or refused, never a panic, and a
// parsed key re-parses to the same identity.
func FuzzParseKey(f *testing.F) {
	_, v, _ := note.GenerateKey(rand.Reader, "w.example")
	v04, _ := fnote.VKeyToCosignatureV1(v)
	for _, s := range []string{v04, v, "", "a+b+c", "w+00000000+BAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, vkey string) {
		k, err := ParseKey(vkey)
		if err != nil {
			return
		}
		k2, err := ParseKey(vkey)
		if err != nil || k2.Name != k.Name || k2.Hash != k.Hash {
			t.Fatalf("re-parse of %q: %+v, %v", vkey, k2, err)
		}
	})
}

// FuzzVerifyCosignature: a witness's response (outside input) never
// panics the verifier, and whatever it accepts verifies with the key.
func FuzzVerifyCosignature(f *testing.F) {
	skey, vkey01, _ := note.GenerateKey(rand.Reader, "w.example")
	signer, _ := fnote.NewSignerForCosignatureV1(skey)
	vkey, _ := fnote.VKeyToCosignatureV1(vkey01)
	k, err := ParseKey(vkey)
	if err != nil {
		f.Fatal(err)
	}
	checkpoint := []byte("log.example/a/b\n3\nq1JVgb5Ml5RT6MkC9fcFzOpsD7JGhnZ/ZeO2Z3h+a2k=\n\n— log.example/a/b AAAAAAAA\n")
	signed, _ := note.Sign(&note.Note{Text: "log.example/a/b\n3\nq1JVgb5Ml5RT6MkC9fcFzOpsD7JGhnZ/ZeO2Z3h+a2k=\n"}, signer)
	good := signed[bytes.Index(signed, []byte("\n\n"))+2:]
	for _, s := range [][]byte{good, nil, []byte("\n"), []byte("— w.example AAAA\n"), append(bytes.Clone(good), good...)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, resp []byte) {
		cs, err := verifyCosignature(k, vkey, checkpoint, resp)
		if err != nil {
			return
		}
		msg := append([]byte("log.example/a/b\n3\nq1JVgb5Ml5RT6MkC9fcFzOpsD7JGhnZ/ZeO2Z3h+a2k=\n\n"), cs.Line...)
		if _, err := note.Open(msg, note.VerifierList(k.Verifier)); err != nil {
			t.Fatalf("accepted a cosignature that does not verify: %q", cs.Line)
		}
	})
}

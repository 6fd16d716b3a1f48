package witness

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

func testVKeys(t *testing.T, name string) (v01, v04 string) {
	t.Helper()
	_, v01, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	v04, err = fnote.VKeyToCosignatureV1(v01)
	if err != nil {
		t.Fatal(err)
	}
	return v01, v04
}

func TestParseKey(t *testing.T) {
	v01, v04 := testVKeys(t, "witness.example/w1")
	if k, err := ParseKey(v04); err != nil || k.Name != "witness.example/w1" {
		t.Fatalf("ParseKey(valid) = %+v, %v", k, err)
	}
	name, rest, _ := strings.Cut(v04, "+")
	hash, key, _ := strings.Cut(rest, "+")
	for _, c := range []struct{ name, vkey string }{
		{"empty", ""},
		{"Ed25519 log key (0x01)", v01},
		{"no key", name + "+" + hash},
		{"wrong key ID", name + "+00000000+" + key},
		{"uppercase key ID", name + "+" + strings.ToUpper(hash) + "+" + key},
		{"short key ID", name + "+" + hash[:6] + "+" + key},
		{"other name", "other+" + hash + "+" + key},
		{"name with space", "a b+" + hash + "+" + key},
		{"bad base64", name + "+" + hash + "+" + key[:len(key)-2] + "!!"},
		{"truncated key", name + "+" + hash + "+" + key[:20]},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ParseKey(c.vkey); cairn.ErrorCode(err) != cairn.EInvalid {
				t.Fatalf("ParseKey: %v, want invalid", err)
			}
		})
	}
}

func TestValidateConfig(t *testing.T) {
	_, k1 := testVKeys(t, "w1")
	_, k2 := testVKeys(t, "w2")
	w1 := cairn.Witness{URL: "https://w1.example/witness/", Key: k1}
	w2 := cairn.Witness{URL: "http://127.0.0.1:9000", Key: k2}

	c := cairn.WitnessConfig{Witnesses: []cairn.Witness{w1, w2}}
	if err := ValidateConfig(&c); err != nil {
		t.Fatal(err)
	}
	if c.Quorum != 2 || c.Policy != cairn.WitnessFailOpen || c.Witnesses[0].URL != "https://w1.example/witness" {
		t.Fatalf("defaults = %+v", c)
	}
	empty := cairn.WitnessConfig{}
	if err := ValidateConfig(&empty); err != nil || empty.Quorum != 0 {
		t.Fatalf("empty config: %+v, %v", empty, err)
	}

	bad := func(u, k string) cairn.Witness { return cairn.Witness{URL: u, Key: k} }
	for _, c := range []struct {
		name string
		c    cairn.WitnessConfig
	}{
		{"bad policy", cairn.WitnessConfig{Policy: "fail-sometimes"}},
		{"quorum without witnesses", cairn.WitnessConfig{Quorum: 1}},
		{"quorum above witnesses", cairn.WitnessConfig{Witnesses: []cairn.Witness{w1}, Quorum: 2}},
		{"negative quorum", cairn.WitnessConfig{Witnesses: []cairn.Witness{w1}, Quorum: -1}},
		{"duplicate key", cairn.WitnessConfig{Witnesses: []cairn.Witness{w1, bad("https://other", k1)}}},
		{"bad key", cairn.WitnessConfig{Witnesses: []cairn.Witness{bad("https://w", "w+00000000+BAAA")}}},
		{"ftp url", cairn.WitnessConfig{Witnesses: []cairn.Witness{bad("ftp://w", k1)}}},
		{"relative url", cairn.WitnessConfig{Witnesses: []cairn.Witness{bad("/witness", k1)}}},
		{"url with user info", cairn.WitnessConfig{Witnesses: []cairn.Witness{bad("https://u:p@w", k1)}}},
		{"url with query", cairn.WitnessConfig{Witnesses: []cairn.Witness{bad("https://w/?a=b", k1)}}},
		{"too many", cairn.WitnessConfig{Witnesses: make([]cairn.Witness, cairn.MaxWitnesses+1)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := ValidateConfig(&c.c); cairn.ErrorCode(err) != cairn.EInvalid {
				t.Fatalf("ValidateConfig: %v, want invalid", err)
			}
		})
	}
}

func TestLogSigned(t *testing.T) {
	msg := []byte("o/a/b\n1\nroot\n\n— o/a/b AAAA\n— witness BBBB\n— o/a/b CCCC\n")
	got, err := logSigned(msg, "o/a/b")
	if err != nil {
		t.Fatal(err)
	}
	if want := "o/a/b\n1\nroot\n\n— o/a/b AAAA\n— o/a/b CCCC\n"; string(got) != want {
		t.Fatalf("logSigned = %q, want %q", got, want)
	}
}

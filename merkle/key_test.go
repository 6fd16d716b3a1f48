package merkle

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn"
	"golang.org/x/mod/sumdb/note"
)

func TestKeyFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "signing.key")
	key, err := GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFile(path, key); err != nil {
		t.Fatalf("WriteKeyFile: %v", err)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if !regexp.MustCompile(`^PRIVATE\+KEY\+cairn\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}\n$`).Match(data) {
		t.Errorf("key file = %q, want PRIVATE+KEY+cairn+<hex id>+<base64>", data)
	}
	// x/mod itself accepts the file, with the key ID of the definition.
	ns, err := note.NewSigner(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("note.NewSigner rejects the key file: %v", err)
	}
	if want := keyID("cairn", key.Public().(ed25519.PublicKey)); ns.KeyHash() != want {
		t.Errorf("key file key ID %08x, want %08x", ns.KeyHash(), want)
	}
	seed, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data))[len("PRIVATE+KEY+cairn+00000000+"):])
	if !bytes.Equal(seed, append([]byte{0x01}, key.Seed()...)) {
		t.Errorf("key file holds %x, want 01 ‖ seed", seed)
	}

	got, err := ReadKeyFile(path)
	if err != nil {
		t.Fatalf("ReadKeyFile: %v", err)
	}
	if !got.Equal(key) {
		t.Error("ReadKeyFile returned another key")
	}

	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the key file", len(entries))
	}

	// Never replace a key.
	other, _ := GenerateKey(nil)
	if err := WriteKeyFile(path, other); cairn.ErrorCode(err) != cairn.EConflict {
		t.Errorf("WriteKeyFile over an existing key: error code %q, want %q", cairn.ErrorCode(err), cairn.EConflict)
	}
	if again, _ := ReadKeyFile(path); !again.Equal(key) {
		t.Error("existing key file was replaced")
	}
	if err := WriteKeyFile(filepath.Join(dir, "k2"), key[:10]); cairn.ErrorCode(err) != cairn.EInvalid {
		t.Errorf("WriteKeyFile(short key): error code %q, want %q", cairn.ErrorCode(err), cairn.EInvalid)
	}
	if err := WriteKeyFile(filepath.Join(dir, "missing", "k"), key); err == nil {
		t.Error("WriteKeyFile into a missing directory succeeded")
	}
}

// ReadKeyFile accepts any x/mod private key, whatever its name.
func TestReadKeyFileXModKey(t *testing.T) {
	skey, vkey, err := note.GenerateKey(nil, "sum.example.org/some-log")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(path, []byte("\n"+skey+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := ReadKeyFile(path)
	if err != nil {
		t.Fatalf("ReadKeyFile: %v", err)
	}
	s, _ := NewSigner(key, testHost)
	if got := s.VerifierKey("sum.example.org/some-log"); got != vkey {
		t.Errorf("key read from an x/mod key file has vkey %q, want %q", got, vkey)
	}
}

func TestReadKeyFileBad(t *testing.T) {
	key := testKey()
	good, err := formatKey(key)
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.SplitN(good, "+", 5)
	seedB64 := fields[4]
	vkey, _ := note.NewEd25519VerifierKey("cairn", key.Public().(ed25519.PublicKey))
	wrongLen := "PRIVATE+KEY+cairn+" + fields[3] + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, make([]byte, 31)...))
	otherAlg := "PRIVATE+KEY+cairn+" + fields[3] + "+" + base64.StdEncoding.EncodeToString(append([]byte{2}, key.Seed()...))

	for _, c := range []struct{ name, contents string }{
		{"empty", ""},
		{"garbage", "hello"},
		{"verifier key", vkey},
		{"wrong key ID", strings.Replace(good, fields[3], fmt.Sprintf("%08x", keyID("cairn", key.Public().(ed25519.PublicKey))^1), 1)},
		{"wrong name for the key ID", strings.Replace(good, "+cairn+", "+other+", 1)},
		{"truncated base64", good[:len(good)-4]},
		{"short seed", wrongLen},
		{"unknown algorithm", otherAlg},
		{"two keys", good + "\n" + good},
		{"not PRIVATE", strings.Replace(good, "PRIVATE", "PUBLIC", 1)},
		{"too large", good + strings.Repeat(" ", maxKeyFileSize)},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k")
			if err := os.WriteFile(path, []byte(c.contents), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := ReadKeyFile(path)
			if cairn.ErrorCode(err) != cairn.EInvalid {
				t.Fatalf("error code %q (%v), want %q", cairn.ErrorCode(err), err, cairn.EInvalid)
			}
			if strings.Contains(err.Error(), seedB64) || strings.Contains(err.Error(), seedB64[:16]) {
				t.Error("the error reveals the key")
			}
		})
	}

	t.Run("missing", func(t *testing.T) {
		if _, err := ReadKeyFile(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadKeyFile(dir); cairn.ErrorCode(err) != cairn.EInvalid {
			t.Errorf("error code %q, want %q", cairn.ErrorCode(err), cairn.EInvalid)
		}
	})
}

func TestReadKeyFilePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("mode bits do not describe access on Windows")
	}
	good, _ := formatKey(testKey())
	for _, mode := range []os.FileMode{0o640, 0o604, 0o620, 0o602, 0o644, 0o660, 0o666, 0o601} {
		t.Run(fmt.Sprintf("%04o", mode), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k")
			if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			if _, err := ReadKeyFile(path); cairn.ErrorCode(err) != cairn.EInvalid {
				t.Errorf("error code %q, want %q", cairn.ErrorCode(err), cairn.EInvalid)
			}
		})
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		path := filepath.Join(t.TempDir(), "k")
		os.WriteFile(path, []byte(good), 0o600)
		os.Chmod(path, mode)
		if _, err := ReadKeyFile(path); err != nil {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
}

// FuzzParseKey: parseKey never panics, and what it accepts is the key
// x/mod's note.NewSigner accepts.
func FuzzParseKey(f *testing.F) {
	good, _ := formatKey(testKey())
	f.Add(good)
	f.Add("PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
	f.Add("PRIVATE+KEY+a+00000000+AQ==")
	f.Add("")
	f.Fuzz(func(t *testing.T, skey string) {
		key, err := parseKey(skey)
		if err != nil {
			return
		}
		ns, err := note.NewSigner(skey)
		if err != nil {
			t.Fatalf("parseKey accepted what note.NewSigner rejects: %v", err)
		}
		s, _ := NewSigner(key, testHost)
		if s.NoteSigner(ns.Name()).KeyHash() != ns.KeyHash() {
			t.Fatal("parseKey returned another key than note.NewSigner's")
		}
	})
}

package merkle

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/cairn-audit/cairn"
	"golang.org/x/mod/sumdb/note"
)

// keyFileName is the key name written into key files. The name in the
// file is only a label: the key signs under each context's origin.
const keyFileName = "cairn"

// maxKeyFileSize bounds what ReadKeyFile reads; a key line is ~90 bytes.
const maxKeyFileSize = 4096

// GenerateKey returns a new Ed25519 signing key drawn from rand, or from a
// secure source if rand is nil.
func GenerateKey(rand io.Reader) (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	return key, nil
}

// WriteKeyFile writes key to path in golang.org/x/mod/sumdb/note's private
// key format, "PRIVATE+KEY+cairn+<hex key ID>+<base64(0x01 ‖ seed)>",
// readable by the owner only (mode 0600). The file appears atomically
// (written and fsynced under a temporary name in the same directory, then
// renamed, then the directory is fsynced).
//
// WriteKeyFile never replaces a key: losing a signing key breaks every
// client that pinned its verifier key. If path exists it returns
// EConflict. (The existence check and the rename are not one atomic step;
// two processes creating the same key file at once are not supported.)
func WriteKeyFile(path string, key ed25519.PrivateKey) (err error) {
	if len(key) != ed25519.PrivateKeySize {
		return cairn.Errorf(cairn.EInvalid, "signing key is not an Ed25519 private key")
	}
	skey, err := formatKey(key)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(path); err == nil {
		return cairn.Errorf(cairn.EConflict, "key file %s already exists", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write key file: %w", err)
	}

	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".cairn-key-*")
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil { // CreateTemp uses 0600; make sure
		return fmt.Errorf("write key file: %w", err)
	}
	if _, err := f.WriteString(skey + "\n"); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	return nil
}

// ReadKeyFile reads an Ed25519 signing key written by [WriteKeyFile], or
// any golang.org/x/mod/sumdb/note private key ("PRIVATE+KEY+<name>+<hex
// key ID>+<base64(0x01 ‖ seed)>", e.g. from note.GenerateKey) whatever its
// key name; the key ID must match the key. Surrounding whitespace is
// ignored.
//
// ReadKeyFile refuses (EInvalid) a file that group or others can read or
// write (any of mode 0077), as ssh does: a signing key that other accounts
// can read is compromised, and one they can write can be swapped. The
// check is skipped on Windows, where mode bits do not describe access.
//
// Errors: EInvalid for loose permissions, a non-regular file or contents
// that are not such a key (the message never quotes the contents); the
// os errors (fs.ErrNotExist, fs.ErrPermission) wrapped otherwise.
func ReadKeyFile(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, cairn.Errorf(cairn.EInvalid, "key file %s is not a regular file", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, cairn.Errorf(cairn.EInvalid,
			"key file %s is accessible by group or others (mode %04o); run chmod 600 on it", path, fi.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	if len(data) > maxKeyFileSize {
		return nil, cairn.Errorf(cairn.EInvalid, "key file %s is too large to be a signing key", path)
	}
	key, err := parseKey(string(bytes.TrimSpace(data)))
	if err != nil {
		return nil, &cairn.Error{Code: cairn.EInvalid,
			Message: fmt.Sprintf("key file %s does not hold an Ed25519 PRIVATE+KEY signing key", path), Err: err}
	}
	return key, nil
}

// formatKey encodes key as an x/mod private key named keyFileName.
func formatKey(key ed25519.PrivateKey) (string, error) {
	v, err := note.NewVerifier(mustVerifierKey(keyFileName, key))
	if err != nil {
		return "", fmt.Errorf("format key: %w", err)
	}
	skey := fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", keyFileName, v.KeyHash(),
		base64.StdEncoding.EncodeToString(append([]byte{algEd25519}, key.Seed()...)))
	return skey, nil
}

// algEd25519 is the signed-note signature type of Ed25519 keys.
const algEd25519 = 0x01

// parseKey decodes an x/mod private key. note.NewSigner validates it (format,
// algorithm, key ID against the derived public key); the seed is then
// taken from the last field. Errors never include the key.
func parseKey(skey string) (ed25519.PrivateKey, error) {
	if _, err := note.NewSigner(skey); err != nil {
		return nil, err // x/mod's errors are fixed strings without the key
	}
	// PRIVATE+KEY+<name>+<hex>+<base64>: the base64 may itself hold '+'.
	fields := strings.SplitN(skey, "+", 5)
	if len(fields) != 5 {
		return nil, errors.New("malformed Ed25519 key")
	}
	raw, err := base64.StdEncoding.DecodeString(fields[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != algEd25519 {
		return nil, errors.New("malformed Ed25519 key")
	}
	return ed25519.NewKeyFromSeed(raw[1:]), nil
}

func mustVerifierKey(name string, key ed25519.PrivateKey) string {
	vkey, err := note.NewEd25519VerifierKey(name, key.Public().(ed25519.PublicKey))
	if err != nil {
		panic("merkle: " + err.Error()) // only for a malformed public key
	}
	return vkey
}

// syncDir makes a rename in dir durable. Windows cannot fsync directories.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

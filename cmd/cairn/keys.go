package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/cairn-audit/cairn/merkle"
)

// runKeys manages checkpoint signing keys offline: keys add-signing.
func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "add-signing" {
		return usageError{"usage: cairn keys add-signing --data-dir DIR [--out FILE]"}
	}
	fs := flag.NewFlagSet("keys add-signing", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", envOr("CAIRN_DATA_DIR", "./cairn-data"), "data directory the key file goes into (CAIRN_DATA_DIR)")
	out := fs.String("out", "", "key file to write (default <data-dir>/signing-<UTC time>.key)")
	if err := fs.Parse(args[1:]); err != nil {
		return flagError(err)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	path := *out
	if path == "" {
		path = filepath.Join(*dataDir, "signing-"+time.Now().UTC().Format("20060102T150405Z")+".key")
	}
	key, err := merkle.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	if err := merkle.WriteKeyFile(path, key); err != nil {
		return err
	}
	pub := key.Public().(ed25519.PublicKey)
	fmt.Fprintf(stdout, "wrote %s (mode 0600; back it up)\npublic key: %s\n\n", path, base64.StdEncoding.EncodeToString(pub))
	fmt.Fprintf(stdout, "To start the overlap, restart the server with the current key first and this one second:\n"+
		"  cairn serve --signing-key-file CURRENT.key --signing-key-file %s\n"+
		"See docs/witnessing.md, \"Key rotation\", for the remaining steps.\n", path)
	return nil
}

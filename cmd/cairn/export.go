package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/cairn-audit/cairn/verify"
)

// runExport downloads a context's export (a tar stream) and unpacks it
// into a new directory: a self-contained bundle that `cairn verify log`
// and any C2SP tlog-tiles client can read offline.
func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	ctxName := fs.String("context", "", "audit context to export (required)")
	out := fs.String("out", "", "directory to create for the bundle (required; must not exist or be empty)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cairn export --context CTX --out DIR [flags]\n\n"+
			"Writes the context's log up to its latest signed checkpoint: entry bundles and Merkle tiles\n"+
			"(C2SP tlog-tiles layout), every signed checkpoint, the verifier key and a manifest.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if *ctxName == "" || *out == "" || fs.NArg() > 0 {
		return usageError{"usage: cairn export --context CTX --out DIR"}
	}
	if err := emptyDir(*out); err != nil {
		return err
	}
	body, err := cf.client().Export(ctx, cf.org, *ctxName)
	if err != nil {
		return err
	}
	defer body.Close()
	files, err := verify.Extract(body, *out)
	if err != nil {
		return fmt.Errorf("export incomplete (%d files written to %s): %w", files, *out, err)
	}
	d, err := verify.OpenDir(*out)
	if err != nil {
		return err
	}
	m, err := d.Manifest()
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(stdout, "exported %s: %d entries, %d checkpoints, %d files in %s\n", m.Origin, m.TreeSize, m.Checkpoints, files, *out)
	return nil
}

// emptyDir creates dir, or accepts an existing empty one.
func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	case err != nil:
		return err
	case len(ents) > 0:
		return usageError{fmt.Sprintf("%s is not empty", dir)}
	}
	return nil
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/merkle"
	"github.com/cairn-audit/cairn/sqlite"
	"github.com/cairn-audit/cairn/verify"
	"golang.org/x/mod/sumdb/tlog"
)

// runFsck checks a stopped server's database: for every context, the tree
// rebuilt from the stored leaves against the stored hashes (as tiles), the
// committed head and every signed checkpoint. The checks are package
// verify's (third-party libraries); only reading the database is Cairn's.
func runFsck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fsck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", envOr("CAIRN_DATA_DIR", "./cairn-data"), "data directory of a stopped server (CAIRN_DATA_DIR)")
	keyFile := fs.String("signing-key-file", envOr("CAIRN_SIGNING_KEY_FILE", ""), "the server's signing key (default <data-dir>/signing.key)")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cairn fsck [--data-dir DIR] [flags]\n\n"+
			"Checks a stopped server's database read-only: every stored leaf hashes to its tree,\n"+
			"roots match the committed heads, checkpoints verify and are consistent.\n"+
			"Exit status: 0 valid, 1 damage found, 2 usage or I/O error.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	err := fsck(ctx, *dataDir, *keyFile, *asJSON, stdout)
	var vf verifyFailed
	if err != nil && !errors.As(err, &vf) {
		err = ioError{err}
	}
	return err
}

func fsck(ctx context.Context, dataDir, keyFile string, asJSON bool, stdout io.Writer) error {
	if keyFile == "" {
		keyFile = filepath.Join(dataDir, "signing.key")
	}
	key, err := merkle.ReadKeyFile(keyFile)
	if err != nil {
		return err
	}
	store, err := sqlite.OpenReadOnly(ctx, filepath.Join(dataDir, "cairn.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	orgs, err := store.ListOrgs(ctx)
	if err != nil {
		return err
	}
	type contextResult struct {
		Org     string `json:"org"`
		Context string `json:"context"`
		*verify.Result
		Valid bool `json:"valid"`
	}
	var results []contextResult
	problems := 0
	for _, o := range orgs {
		cs, err := store.ListContexts(ctx, o.Name)
		if err != nil {
			return err
		}
		for _, c := range cs {
			res, err := fsckContext(ctx, store, key, c)
			if err != nil {
				return fmt.Errorf("%s/%s: %w", c.Org, c.Name, err)
			}
			problems += len(res.Problems)
			results = append(results, contextResult{c.Org, c.Name, res, res.Valid()})
		}
	}
	if asJSON {
		if err := printJSON(stdout, results); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			for _, p := range r.Problems {
				fmt.Fprintf(stdout, "%s/%s: %s\n", r.Org, r.Context, p)
			}
			fmt.Fprintf(stdout, "%s/%s: %s\n", r.Org, r.Context, r.Summary())
		}
	}
	if problems > 0 {
		return verifyFailed{problems}
	}
	return nil
}

// fsckContext checks one context. The origin comes from its checkpoints
// (the host the server signed under); a context never signed is checked
// against its head only.
func fsckContext(ctx context.Context, store *sqlite.Store, key []byte, c *cairn.Context) (*verify.Result, error) {
	src := &dbSource{store: store, org: c.Org, name: c.Name}
	cps, err := src.Checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	if len(cps) == 0 {
		return fsckUnsigned(ctx, src, c)
	}
	origin, _, _ := strings.Cut(string(cps[0]), "\n")
	host, ok := strings.CutSuffix(origin, "/"+c.Org+"/"+c.Name)
	if !ok {
		return nil, fmt.Errorf("checkpoint origin %q is not this context's", origin)
	}
	signer, err := merkle.NewSigner(key, host)
	if err != nil {
		return nil, err
	}
	src.keys = []string{signer.VerifierKey(origin)}
	res, err := verify.Log(ctx, src, verify.Options{Keys: src.keys, ReadTo: c.Size, CheckEntry: cairnLeafCheck(origin)})
	if err != nil {
		return nil, err
	}
	checkHead(res, c)
	return res, nil
}

// checkHead compares the committed head (size, root) with the tree rebuilt
// from the leaves.
func checkHead(res *verify.Result, c *cairn.Context) {
	size := c.Size
	root, err := res.RootAt(c.Size)
	switch {
	case err != nil:
		res.Problems = append(res.Problems, verify.Problem{Check: "head", Size: &size,
			Message: "the committed head is larger than the leaves that could be read"})
	case root != tlog.Hash(c.Root):
		res.Problems = append(res.Problems, verify.Problem{Check: "head", Size: &size,
			Message: "the committed root is not the root of the stored leaves"})
	}
}

// fsckUnsigned checks a context without checkpoints: its leaves against
// its head.
func fsckUnsigned(ctx context.Context, src *dbSource, c *cairn.Context) (*verify.Result, error) {
	res := &verify.Result{Entries: c.Size, Problems: []verify.Problem{}}
	var hashes []tlog.Hash
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for n := int64(0); n < c.Size; n += 256 {
		leaves, err := src.store.ReadLeaves(ctx, c.Org, c.Name, n, min(n+256, c.Size))
		if err != nil {
			i := n
			res.Problems = append(res.Problems, verify.Problem{Check: verify.CheckEntry, Index: &i, Message: "cannot read: " + cairn.ErrorMessage(err)})
			return res, nil
		}
		for k, l := range leaves {
			hs, err := tlog.StoredHashes(n+int64(k), l, hr)
			if err != nil {
				return nil, err
			}
			hashes = append(hashes, hs...)
		}
	}
	root, err := tlog.TreeHash(c.Size, hr)
	if err != nil {
		return nil, err
	}
	res.EntriesValid = c.Size
	if root != tlog.Hash(c.Root) {
		size := c.Size
		res.EntriesValid = 0
		res.Problems = append(res.Problems, verify.Problem{Check: "head", Size: &size, Message: "the committed root is not the root of the stored leaves"})
	}
	return res, nil
}

// dbSource serves a context's tiles and checkpoints straight from the
// database, as the server would but without the signed-size bound.
type dbSource struct {
	store     *sqlite.Store
	org, name string
	keys      []string
}

func (d *dbSource) ReadTile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	data, err := merkle.ReadTile(ctx, d.store, d.org, d.name, t, math.MaxInt64)
	switch cairn.ErrorCode(err) {
	case "":
		return data, nil
	case cairn.ENotFound, cairn.EIntegrity:
		return nil, fmt.Errorf("%s: %w", merkle.TilePath(t), verify.ErrMissing)
	}
	return nil, err
}

func (d *dbSource) Checkpoints(ctx context.Context) ([][]byte, error) {
	var out [][]byte
	for from := int64(0); ; {
		page, err := d.store.Checkpoints(ctx, d.org, d.name, from, math.MaxInt64, 1000)
		if err != nil {
			return nil, err
		}
		for _, cp := range page {
			out = append(out, cp.Note)
		}
		if len(page) < 1000 {
			return out, nil
		}
		from = page[len(page)-1].Size + 1
	}
}

func (d *dbSource) Keys(ctx context.Context) ([]string, error) { return d.keys, nil }

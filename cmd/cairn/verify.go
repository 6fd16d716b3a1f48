package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/cairn-audit/cairn/verify"
	"golang.org/x/mod/sumdb/tlog"
)

// verifyFailed means verification ran and found problems: exit 1.
type verifyFailed struct{ n int }

func (e verifyFailed) Error() string { return fmt.Sprintf("verification failed (%d problems)", e.n) }

// ioError means verification could not run (unreadable input, network):
// exit 2, like a usage error.
type ioError struct{ err error }

func (e ioError) Error() string { return e.err.Error() }
func (e ioError) Unwrap() error { return e.err }

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"usage: cairn verify log|receipt|consistency [flags] ARGS"}
	}
	var err error
	switch args[0] {
	case "log":
		err = verifyLog(ctx, args[1:], stdout, stderr)
	case "receipt":
		err = verifyReceipt(ctx, args[1:], stdout, stderr)
	case "consistency":
		err = verifyConsistency(ctx, args[1:], stdout, stderr)
	default:
		return usageError{fmt.Sprintf("unknown verify command %q\nusage: cairn verify log|receipt|consistency [flags] ARGS", args[0])}
	}
	var ue usageError
	var vf verifyFailed
	if err != nil && !errors.As(err, &ue) && !errors.As(err, &vf) && !errors.Is(err, flag.ErrHelp) {
		err = ioError{err}
	}
	return err
}

// verifyFlags are shared by the verify commands.
type verifyFlags struct {
	keys  []string
	state string
	token string
	json  bool
}

func (v *verifyFlags) register(fs *flag.FlagSet) {
	fs.Func("key", "verifier key `VKEY`, or a file of them, one per line (repeatable)", func(s string) error {
		if data, err := os.ReadFile(s); err == nil {
			v.keys = append(v.keys, verify.ParseKeys(data)...)
			return nil
		}
		if strings.Count(s, "+") < 2 {
			return fmt.Errorf("%q is neither a verifier key nor a readable file", s)
		}
		v.keys = append(v.keys, s)
		return nil
	})
	fs.StringVar(&v.state, "state", "", "directory remembering the last verified checkpoint per origin (rollback and fork detection)")
	fs.StringVar(&v.token, "token", "", "API key for reading a log over HTTP (default: CAIRN_TOKEN)")
	fs.BoolVar(&v.json, "json", false, "print the result as JSON")
}

func (v *verifyFlags) openState() (*verify.State, error) {
	if v.state == "" {
		return nil, nil
	}
	return verify.OpenState(v.state)
}

func verifyLog(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify log", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var vf verifyFlags
	vf.register(fs)
	origin := fs.String("origin", "", "expected origin (default: the name of the keys)")
	skipTiles := fs.Bool("skip-tiles", false, "do not compare the log's Merkle tiles with the rebuilt tree")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cairn verify log [flags] DIR|URL\n\n"+
			"Rebuilds the whole tree from the entries of an export directory or a log URL\n"+
			"(http(s)://HOST/log/ORG/CONTEXT) and checks every signed checkpoint.\n"+
			"Without --key the keys the log publishes are used (trust on first use).\n"+
			"Exit status: 0 valid, 1 verification failure, 2 usage or I/O error.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fs.NArg() != 1 {
		return usageError{"usage: cairn verify log [flags] DIR|URL"}
	}
	target := fs.Arg(0)
	var src verify.Source
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		h, err := verify.NewHTTP(target, tokenOrEnv(vf.token), &http.Client{Timeout: 2 * time.Minute})
		if err != nil {
			return usageError{err.Error()}
		}
		src = h
	} else {
		d, err := verify.OpenDir(target)
		if err != nil {
			return err
		}
		src = d
	}
	st, err := vf.openState()
	if err != nil {
		return err
	}
	leafOrigin := *origin
	if v, err := verify.NewVerifier(vf.keys, *origin); err == nil {
		leafOrigin = v.Origin()
	}
	res, err := verify.Log(ctx, src, verify.Options{Keys: vf.keys, Origin: *origin, State: st,
		SkipTiles: *skipTiles, CheckEntry: cairnLeafCheck(leafOrigin)})
	if err != nil {
		return err
	}
	return reportLog(stdout, res, vf.json)
}

// reportLog prints a log verification (problems, then the totals line)
// and turns problems into exit status 1.
func reportLog(w io.Writer, res *verify.Result, asJSON bool) error {
	if asJSON {
		out := struct {
			*verify.Result
			Valid   bool   `json:"valid"`
			Summary string `json:"summary"`
		}{res, res.Valid(), res.Summary()}
		if err := printJSON(w, out); err != nil {
			return err
		}
	} else {
		keys := "pinned key"
		if !res.KeysPinned {
			keys = "key published by the log itself (not pinned: pass --key)"
		}
		fmt.Fprintf(w, "log %s, %s\n", res.Origin, keys)
		for _, p := range res.Problems {
			fmt.Fprintln(w, p.String())
		}
		fmt.Fprintln(w, res.Summary())
	}
	if !res.Valid() {
		return verifyFailed{len(res.Problems)}
	}
	return nil
}

// cairnLeafCheck checks what Cairn puts in every leaf: its sequence number
// equals its index, and (when the origin is known) its org and context are
// the log's, so a leaf cannot be moved within or between logs unseen.
func cairnLeafCheck(origin string) func(int64, []byte) error {
	return func(i int64, entry []byte) error {
		var e struct {
			Seq     *int64 `json:"seq"`
			Org     string `json:"org"`
			Context string `json:"context"`
		}
		if err := json.Unmarshal(entry, &e); err != nil || e.Seq == nil {
			return errors.New("not a Cairn event (no JSON object with a seq)")
		}
		if *e.Seq != i {
			return fmt.Errorf("the event says seq %d: entries were moved or reordered", *e.Seq)
		}
		if origin != "" && !strings.HasSuffix(origin, "/"+e.Org+"/"+e.Context) {
			return fmt.Errorf("the event belongs to %s/%s, not to this log", e.Org, e.Context)
		}
		return nil
	}
}

func verifyReceipt(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify receipt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var vf verifyFlags
	vf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cairn verify receipt --key VKEY [flags] EVENT.json RECEIPT.tlog-proof\n\n"+
			"EVENT.json is the event as GET /api/v1/.../events/{id} returns it (its \"leaf\" member holds\n"+
			"the committed bytes) or the raw canonical leaf. The receipt is a C2SP tlog-proof.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fs.NArg() != 2 || len(vf.keys) == 0 {
		return usageError{"usage: cairn verify receipt --key VKEY EVENT.json RECEIPT.tlog-proof"}
	}
	event, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	receipt, err := os.ReadFile(fs.Arg(1))
	if err != nil {
		return err
	}
	v, err := verify.NewVerifier(vf.keys, "")
	if err != nil {
		return usageError{err.Error()}
	}
	leaf := leafOf(event)
	res := v.Receipt(leaf, receipt)
	if res.Valid {
		if err := cairnLeafCheck(v.Origin())(res.Index, leaf); err != nil {
			res.Valid, res.Reason = false, err.Error()
		}
	}
	st, err := vf.openState()
	if err != nil {
		return err
	}
	if res.Valid && st != nil {
		// A receipt may be older than what was seen: only the same size
		// with another root is evidence (of a fork).
		prev, err := st.Load(v.Origin())
		if err != nil {
			return err
		}
		if prev != nil && prev.Size == res.TreeSize && prev.Root != res.Checkpoint.Root {
			res.Valid, res.Reason = false, fmt.Sprintf("FORK: the receipt's checkpoint of size %d has another root than the one verified before", prev.Size)
		}
	}
	if vf.json {
		if err := printJSON(stdout, res); err != nil {
			return err
		}
	} else if res.Valid {
		fmt.Fprintf(stdout, "receipt valid: entry %d (leaf hash %s) is in the tree of size %d of %s\n",
			res.Index, res.LeafHash, res.TreeSize, res.Origin)
	} else {
		fmt.Fprintf(stdout, "receipt invalid: %s\n", res.Reason)
	}
	if !res.Valid {
		return verifyFailed{1}
	}
	return nil
}

// leafOf returns the committed bytes of an event file: the base64 "leaf"
// member of the API's event JSON if there is one, else the file itself
// without trailing whitespace (a canonical leaf never ends in any).
func leafOf(event []byte) []byte {
	var e struct {
		Leaf *string `json:"leaf"`
	}
	if json.Unmarshal(event, &e) == nil && e.Leaf != nil {
		if b, err := base64.StdEncoding.DecodeString(*e.Leaf); err == nil {
			return b
		}
	}
	return bytes.TrimRight(event, " \t\r\n")
}

func verifyConsistency(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify consistency", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var vf verifyFlags
	vf.register(fs)
	proofFile := fs.String("proof", "", "file with the consistency proof: the JSON of GET .../proof/consistency, or one base64 hash per line")
	logURL := fs.String("url", "", "log URL (http(s)://HOST/log/ORG/CONTEXT) to fetch the proof from instead")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cairn verify consistency --key VKEY (--proof FILE | --url LOG) [flags] OLD NEW\n\n"+
			"Checks that the signed checkpoint NEW extends OLD. The proof is given (--proof) or fetched\n"+
			"from the log (--url, with --token); none is needed when the sizes are equal or OLD is empty.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fs.NArg() != 2 || len(vf.keys) == 0 || (*proofFile != "" && *logURL != "") {
		return usageError{"usage: cairn verify consistency --key VKEY (--proof FILE | --url LOG) OLD NEW"}
	}
	older, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	newer, err := os.ReadFile(fs.Arg(1))
	if err != nil {
		return err
	}
	v, err := verify.NewVerifier(vf.keys, "")
	if err != nil {
		return usageError{err.Error()}
	}
	fetch := func(from, to int64) ([]tlog.Hash, error) {
		return fetchConsistency(ctx, *logURL, tokenOrEnv(vf.token), from, to)
	}
	var hashes []tlog.Hash
	oldCP, errOld := v.Checkpoint(older)
	newCP, errNew := v.Checkpoint(newer)
	if errOld == nil && errNew == nil && oldCP.Size > 0 && oldCP.Size < newCP.Size {
		switch {
		case *proofFile != "":
			if hashes, err = readProofFile(*proofFile); err != nil {
				return err
			}
		case *logURL != "":
			if hashes, err = fetch(oldCP.Size, newCP.Size); err != nil {
				return err
			}
		default:
			return usageError{"a proof is needed: give --proof FILE or --url LOG"}
		}
	}
	res := v.Consistency(older, newer, hashes)
	st, err := vf.openState()
	if err != nil {
		return err
	}
	if res.Valid && st != nil {
		rootAt := func(size int64) (tlog.Hash, error) {
			if size == oldCP.Size {
				return oldCP.Root, nil
			}
			if *logURL == "" {
				return tlog.Hash{}, errors.New("no proof from that size (use --url)")
			}
			prev, err := st.Load(v.Origin())
			if err != nil || prev == nil {
				return tlog.Hash{}, errors.New("state changed during the check")
			}
			p, err := fetch(size, newCP.Size)
			if err != nil {
				return tlog.Hash{}, err
			}
			if err := verify.VerifyConsistencyProof(size, prev.Root, newCP.Size, newCP.Root, p); err != nil {
				return tlog.Hash{}, fmt.Errorf("FORK: %v", err)
			}
			return prev.Root, nil
		}
		p, _, err := st.Compare(v.Origin(), res.NewCheckpoint, rootAt)
		if err != nil {
			return err
		}
		if p != nil {
			res.Valid, res.Reason = false, p.Message
		} else if err := st.Save(v.Origin(), newer); err != nil {
			return err
		}
	}
	if vf.json {
		if err := printJSON(stdout, res); err != nil {
			return err
		}
	} else if res.Valid {
		fmt.Fprintf(stdout, "consistent: the checkpoint of size %d extends the one of size %d of %s\n", res.New, res.Old, res.Origin)
	} else {
		fmt.Fprintf(stdout, "not consistent: %s\n", res.Reason)
	}
	if !res.Valid {
		return verifyFailed{1}
	}
	return nil
}

// readProofFile reads a consistency proof: the JSON the server returns, or
// base64 hashes one per line.
func readProofFile(path string) ([]tlog.Hash, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var j struct {
		Hashes []string `json:"hashes"`
	}
	lines := strings.Fields(string(data))
	if json.Unmarshal(data, &j) == nil {
		lines = j.Hashes
	}
	return decodeProof(lines)
}

func decodeProof(lines []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, 0, len(lines))
	for _, l := range lines {
		b, err := base64.StdEncoding.DecodeString(l)
		if err != nil || len(b) != tlog.HashSize {
			return nil, fmt.Errorf("proof hash %q is not a base64 SHA-256 hash", l)
		}
		out = append(out, tlog.Hash(b))
	}
	return out, nil
}

// fetchConsistency asks a log for a consistency proof.
func fetchConsistency(ctx context.Context, logURL, token string, from, to int64) ([]tlog.Hash, error) {
	u := fmt.Sprintf("%s/proof/consistency?from=%d&to=%d", strings.TrimRight(logURL, "/"), from, to)
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, bytes.TrimSpace(body))
	}
	var j struct {
		Hashes []string `json:"hashes"`
	}
	if err := json.Unmarshal(body, &j); err != nil {
		return nil, fmt.Errorf("consistency proof: %w", err)
	}
	return decodeProof(j.Hashes)
}

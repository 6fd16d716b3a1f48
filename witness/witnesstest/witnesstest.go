// Package witnesstest is an in-process C2SP tlog-witness for tests: an
// httptest server that implements add-checkpoint faithfully. It is for
// tests only and must never be used to witness a real log.
package witnesstest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// Witness is an in-process C2SP tlog-witness: it verifies the log's
// signature (403 if it fails, 404 for an unknown origin), checks the
// consistency proof with transparency-dev/merkle, keeps its latest
// checkpoint per origin, answers 409 with its size when "old" is not it and
// 422 on a bad proof or a fork, and cosigns with a transparency-dev/formats
// cosignature/v1 signer.
type Witness struct {
	Name string
	VKey string // the 0x04 cosignature verifier key
	URL  string // the submission prefix
	// Signer cosigns; tests may swap it (before use) to forge answers.
	Signer *fnote.Signer
	srv    *httptest.Server

	Down     atomic.Bool  // abort every connection (a network error)
	Garble   atomic.Bool  // return a cosignature that does not verify
	Requests atomic.Int64 // add-checkpoint requests received

	mu     sync.Mutex
	logs   map[string]note.Verifier // origin → log verifier
	latest map[string]state
}

type state struct {
	size uint64
	root []byte
}

// New starts a witness named name; it stops when the test ends.
func New(t testing.TB, name string) *Witness {
	t.Helper()
	skey, vkey01, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := fnote.VKeyToCosignatureV1(vkey01)
	if err != nil {
		t.Fatal(err)
	}
	w := &Witness{Name: name, VKey: vkey, Signer: signer,
		logs: map[string]note.Verifier{}, latest: map[string]state{}}
	w.srv = httptest.NewServer(w)
	w.URL = w.srv.URL
	t.Cleanup(w.srv.Close)
	return w
}

// AddLog makes the witness accept checkpoints of origin signed by vkey.
func (w *Witness) AddLog(t testing.TB, origin, vkey string) {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	w.logs[origin] = v
	w.mu.Unlock()
}

// RemoveLog makes the witness forget origin (404 from then on).
func (w *Witness) RemoveLog(origin string) {
	w.mu.Lock()
	delete(w.logs, origin)
	w.mu.Unlock()
}

// SetLatest overwrites the witness's state for origin (e.g. a fork it saw).
func (w *Witness) SetLatest(origin string, size uint64, root []byte) {
	w.mu.Lock()
	w.latest[origin] = state{size, root}
	w.mu.Unlock()
}

// Size returns the witness's latest size for origin.
func (w *Witness) Size(origin string) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.latest[origin].size
}

// ServeHTTP implements add-checkpoint.
func (w *Witness) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if w.Down.Load() {
		panic(http.ErrAbortHandler)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/add-checkpoint" {
		http.NotFound(rw, r)
		return
	}
	w.Requests.Add(1)
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(rw, "read", http.StatusBadRequest)
		return
	}
	old, hashes, cp, err := parseAddCheckpoint(body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	origin, _, _ := strings.Cut(string(cp), "\n")

	w.mu.Lock()
	defer w.mu.Unlock()
	v, ok := w.logs[origin]
	if !ok {
		http.Error(rw, "unknown log", http.StatusNotFound)
		return
	}
	c, _, n, err := log.ParseCheckpoint(cp, origin, v)
	if err != nil {
		http.Error(rw, "bad log signature", http.StatusForbidden)
		return
	}
	if old > c.Size {
		http.Error(rw, "old size is larger than the checkpoint", http.StatusBadRequest)
		return
	}
	cur := w.latest[origin]
	if old != cur.size {
		rw.Header().Set("Content-Type", "text/x.tlog.size")
		rw.WriteHeader(http.StatusConflict)
		fmt.Fprintf(rw, "%d\n", cur.size)
		return
	}
	switch {
	case old == c.Size:
		if cur.size > 0 && !bytes.Equal(cur.root, c.Hash) {
			http.Error(rw, "same size, different root", http.StatusUnprocessableEntity)
			return
		}
	case old == 0:
		if len(hashes) != 0 {
			http.Error(rw, "a proof from size 0 is empty", http.StatusUnprocessableEntity)
			return
		}
	default:
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old, c.Size, hashes, cur.root, c.Hash); err != nil {
			http.Error(rw, "bad consistency proof", http.StatusUnprocessableEntity)
			return
		}
	}
	w.latest[origin] = state{c.Size, c.Hash} // "persisted" before replying
	signed, err := note.Sign(&note.Note{Text: n.Text}, w.Signer)
	if err != nil {
		http.Error(rw, "sign", http.StatusInternalServerError)
		return
	}
	sigs := signed[bytes.Index(signed, []byte("\n\n"))+2:]
	if w.Garble.Load() {
		sigs = bytes.Clone(sigs)
		sigs[len(sigs)-12] ^= 1
	}
	rw.Write(sigs)
}

func parseAddCheckpoint(body []byte) (old uint64, hashes [][]byte, cp []byte, err error) {
	br := bufio.NewReader(bytes.NewReader(body))
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "old ") {
		return 0, nil, nil, fmt.Errorf("missing old line")
	}
	if old, err = strconv.ParseUint(strings.TrimSuffix(line[4:], "\n"), 10, 64); err != nil {
		return 0, nil, nil, fmt.Errorf("bad old size")
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return 0, nil, nil, fmt.Errorf("missing blank line")
		}
		if line == "\n" {
			break
		}
		h, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(line, "\n"))
		if err != nil || len(h) != 32 {
			return 0, nil, nil, fmt.Errorf("bad proof line")
		}
		hashes = append(hashes, h)
	}
	cp, _ = io.ReadAll(br)
	return old, hashes, cp, nil
}

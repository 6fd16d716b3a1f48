package httpapi

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"
	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/ingest"
	"github.com/cairn-audit/cairn/merkle"
	"github.com/cairn-audit/cairn/sqlite"
	"github.com/cairn-audit/cairn/storetest"
	"github.com/cairn-audit/cairn/verify"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	tclient "github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/tlog"
)

// logFixture is a server over a real SQLite store with a signer and a
// running checkpointer.
type logFixture struct {
	t      testing.TB
	store  *sqlite.Store
	signer *merkle.Signer
	cp     *merkle.Checkpointer
	url    string
	token  string
	origin string
	vkey   string
	leaves [][]byte
}

func newLogFixture(t testing.TB) *logFixture {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "log.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	if _, err := s.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateContext(ctx, &cairn.Context{Org: "acme", Name: "app"}); err != nil {
		t.Fatal(err)
	}
	secret, key := NewAPIKey("acme", "test", true, time.Now())
	if err := s.CreateAPIKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := merkle.NewSigner(priv, "test.local")
	if err != nil {
		t.Fatal(err)
	}
	cp, err := merkle.NewCheckpointer(merkle.Config{Store: s, Signer: signer, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c := ingest.NewCommitter(ingest.CommitterConfig{Store: s, OnCommit: func(int, time.Duration) { cp.Notify() }})
	t.Cleanup(func() { c.Close() })
	srv := httptest.NewServer(New(Config{Store: s, Committer: c, Signer: signer, Checkpoints: cp}))
	t.Cleanup(srv.Close)
	origin, _ := signer.Origin("acme", "app")
	return &logFixture{t: t, store: s, signer: signer, cp: cp, url: srv.URL, token: secret,
		origin: origin, vkey: signer.VerifierKey(origin)}
}

// run starts the checkpointer for the rest of the test.
func (f *logFixture) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.cp.Run(ctx); close(done) }()
	f.t.Cleanup(func() { cancel(); <-done })
}

// grow appends events until the log has size n and signs a checkpoint.
func (f *logFixture) grow(n int) *cairn.Checkpoint {
	f.t.Helper()
	ctx := f.t.Context()
	for len(f.leaves) < n {
		req := &cairn.AppendRequest{Org: "acme", Context: "app"}
		for i := len(f.leaves); i < n && len(req.Entries) < 5000; i++ {
			req.Entries = append(req.Entries, storetest.NewEntry("acme", "app", cairn.Event{Action: "test.event"}))
		}
		res, err := f.store.Append(ctx, []*cairn.AppendRequest{req})
		if err != nil || res[0].Err != nil {
			f.t.Fatal(err, res[0].Err)
		}
		leaves, err := f.store.ReadLeaves(ctx, "acme", "app", int64(len(f.leaves)), int64(len(f.leaves)+len(req.Entries)))
		if err != nil {
			f.t.Fatal(err)
		}
		f.leaves = append(f.leaves, leaves...)
	}
	c, err := f.store.GetContext(ctx, "acme", "app")
	if err != nil {
		f.t.Fatal(err)
	}
	cp, err := f.cp.SignHead(ctx, cairn.Head{Org: "acme", Context: "app", Size: c.Size, Root: c.Root})
	if err != nil {
		f.t.Fatal(err)
	}
	return cp
}

func (f *logFixture) client() *http.Client {
	return &http.Client{Transport: bearer{f.token}}
}

type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// get fetches a path and returns status, body and headers.
func (f *logFixture) get(path string, auth bool) (int, []byte, http.Header) {
	f.t.Helper()
	hc := http.DefaultClient
	if auth {
		hc = f.client()
	}
	resp, err := hc.Get(f.url + path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body, resp.Header
}

func errCode(body []byte) string {
	var e ErrorBody
	json.Unmarshal(body, &e)
	return e.Error.Code
}

// roots computes the RFC 6962 root at each size with transparency-dev's
// compact ranges, independently of Cairn and x/mod.
func roots(leaves [][]byte, sizes ...int64) map[int64][]byte {
	out := map[int64][]byte{}
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	want := map[int64]bool{}
	for _, s := range sizes {
		want[s] = true
	}
	for i := int64(0); i <= int64(len(leaves)); i++ {
		if want[i] {
			root, _ := r.GetRootHash(nil)
			if i == 0 {
				root = rfc6962.DefaultHasher.EmptyRoot()
			}
			out[i] = root
		}
		if i < int64(len(leaves)) {
			r.Append(rfc6962.DefaultHasher.HashLeaf(leaves[i]), nil)
		}
	}
	return out
}

func decodeHashes(t *testing.T, hs []string) [][]byte {
	t.Helper()
	out := make([][]byte, len(hs))
	for i, h := range hs {
		b, err := base64.StdEncoding.DecodeString(h)
		if err != nil || len(b) != 32 {
			t.Fatalf("proof hash %q", h)
		}
		out[i] = b
	}
	return out
}

func tlogHashes(hs [][]byte) []tlog.Hash {
	out := make([]tlog.Hash, len(hs))
	for i := range hs {
		copy(out[i][:], hs[i])
	}
	return out
}

// TestTilesTorchwood: torchwood's tile client fetches every entry over
// HTTP and authenticates it against a signed checkpoint.
func TestTilesTorchwood(t *testing.T) {
	f := newLogFixture(t)
	for _, n := range []int{1, 2, 255, 256, 257, 1000} {
		cp := f.grow(n)
		v, _ := verify.NewVerifier([]string{f.vkey}, "")
		vc, err := v.Checkpoint(cp.Note)
		if err != nil {
			t.Fatal(err)
		}
		fetcher, err := torchwood.NewTileFetcher(f.url+"/log/acme/app", torchwood.WithHTTPClient(f.client()))
		if err != nil {
			t.Fatal(err)
		}
		c, err := torchwood.NewClient(fetcher)
		if err != nil {
			t.Fatal(err)
		}
		tree := tlog.Tree{N: vc.Size, Hash: vc.Root}
		got := int64(0)
		for i, e := range c.AllEntries(t.Context(), tree, 0) {
			if i != got || !bytes.Equal(e, f.leaves[i]) {
				t.Fatalf("size %d: torchwood entry %d differs", n, i)
			}
			got++
		}
		if err := c.Err(); err != nil || got != int64(n) {
			t.Fatalf("size %d: torchwood read %d entries: %v", n, got, err)
		}
		for _, i := range []int64{0, int64(n) / 2, int64(n) - 1} {
			e, p, err := c.Entry(t.Context(), tree, i)
			if err != nil || !bytes.Equal(e, f.leaves[i]) {
				t.Fatalf("size %d: torchwood Entry(%d): %v", n, i, err)
			}
			if err := tlog.CheckRecord(p, tree.N, tree.Hash, i, tlog.RecordHash(e)); err != nil {
				t.Fatalf("size %d: proof for %d: %v", n, i, err)
			}
		}
	}
}

// TestTilesTessera: Tessera's proof builder builds proofs from Cairn's
// tiles that transparency-dev/merkle accepts and that equal Cairn's own
// proof endpoints; Tessera's fsck checks the whole served log.
func TestTilesTessera(t *testing.T) {
	f := newLogFixture(t)
	f.grow(700)
	cp := f.grow(70_000)
	u, _ := url.Parse(f.url + "/log/acme/app/")
	hf, err := tclient.NewHTTPFetcher(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	hf.SetAuthorizationHeader("Bearer " + f.token)
	ctx := t.Context()
	pb, err := tclient.NewProofBuilder(ctx, uint64(cp.Size), hf.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	rs := roots(f.leaves, 700, cp.Size)
	for _, i := range []uint64{0, 1, 255, 256, 699, 65535, 65536, 69999} {
		p, err := pb.InclusionProof(ctx, i)
		if err != nil {
			t.Fatalf("tessera InclusionProof(%d): %v", i, err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, uint64(cp.Size), rfc6962.DefaultHasher.HashLeaf(f.leaves[i]), p, rs[cp.Size]); err != nil {
			t.Fatalf("tessera's inclusion proof of %d rejected: %v", i, err)
		}
		_, body, _ := f.get(fmt.Sprintf("/log/acme/app/proof/inclusion?index=%d", i), true)
		var ours InclusionProof
		json.Unmarshal(body, &ours)
		if fmt.Sprint(decodeHashes(t, ours.Hashes)) != fmt.Sprint(p) {
			t.Fatalf("Cairn's inclusion proof of %d differs from Tessera's", i)
		}
	}
	p, err := pb.ConsistencyProof(ctx, 700, uint64(cp.Size))
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, 700, uint64(cp.Size), p, rs[700], rs[cp.Size]); err != nil {
		t.Fatalf("tessera's consistency proof rejected: %v", err)
	}

	t.Run("fsck", func(t *testing.T) { tesseraFsck(t, f, hf) })
}

func TestProofEndpoints(t *testing.T) {
	f := newLogFixture(t)
	cp := f.grow(65_537 + 300)
	sizes := []int64{1, 2, 255, 256, 257, 65_535, 65_536, 65_537}
	for _, s := range []int64{3, 1000, 40_000, 65_800} { // fixed "random" sizes: repeatable
		sizes = append(sizes, s)
	}
	sizes = append(sizes, cp.Size)
	slices.Sort(sizes)
	rs := roots(f.leaves, sizes...)
	hasher := rfc6962.DefaultHasher

	for _, size := range sizes {
		for _, i := range []int64{0, size / 3, size - 1} {
			status, body, _ := f.get(fmt.Sprintf("/log/acme/app/proof/inclusion?index=%d&size=%d", i, size), true)
			var p InclusionProof
			if err := json.Unmarshal(body, &p); status != 200 || err != nil || p.Index != i || p.Size != size {
				t.Fatalf("inclusion %d/%d: %d %s", i, size, status, body)
			}
			hs := decodeHashes(t, p.Hashes)
			leafHash := hasher.HashLeaf(f.leaves[i])
			if err := proof.VerifyInclusion(hasher, uint64(i), uint64(size), leafHash, hs, rs[size]); err != nil {
				t.Errorf("inclusion %d/%d rejected by transparency-dev/merkle: %v", i, size, err)
			}
			if err := tlog.CheckRecord(tlogHashes(hs), size, tlog.Hash(rs[size]), i, tlog.Hash(leafHash)); err != nil {
				t.Errorf("inclusion %d/%d rejected by sumdb/tlog: %v", i, size, err)
			}
		}
	}
	for a, from := range sizes {
		for _, to := range sizes[a:] {
			status, body, _ := f.get(fmt.Sprintf("/log/acme/app/proof/consistency?from=%d&to=%d", from, to), true)
			var p ConsistencyProof
			if err := json.Unmarshal(body, &p); status != 200 || err != nil || p.From != from || p.To != to {
				t.Fatalf("consistency %d→%d: %d %s", from, to, status, body)
			}
			hs := decodeHashes(t, p.Hashes)
			if err := proof.VerifyConsistency(hasher, uint64(from), uint64(to), hs, rs[from], rs[to]); err != nil {
				t.Errorf("consistency %d→%d rejected by transparency-dev/merkle: %v", from, to, err)
			}
			if from < to {
				if err := tlog.CheckTree(tlogHashes(hs), to, tlog.Hash(rs[to]), from, tlog.Hash(rs[from])); err != nil {
					t.Errorf("consistency %d→%d rejected by sumdb/tlog: %v", from, to, err)
				}
			}
		}
	}

	// By leaf hash; size defaults to the latest checkpoint.
	lh := base64.StdEncoding.EncodeToString(hasher.HashLeaf(f.leaves[4242]))
	status, body, _ := f.get("/log/acme/app/proof/inclusion?leaf_hash="+url.QueryEscape(lh), true)
	var p InclusionProof
	if json.Unmarshal(body, &p); status != 200 || p.Index != 4242 || p.Size != cp.Size {
		t.Fatalf("inclusion by leaf hash: %d %s", status, body)
	}

	unknown := base64.StdEncoding.EncodeToString(hasher.HashLeaf([]byte("never logged")))
	for _, tc := range []struct {
		path, code string
	}{
		{fmt.Sprintf("/log/acme/app/proof/inclusion?index=0&size=%d", cp.Size+1), cairn.ENotFound},
		{"/log/acme/app/proof/inclusion?index=5&size=5", cairn.EInvalid},
		{"/log/acme/app/proof/inclusion?index=-1", cairn.EInvalid},
		{"/log/acme/app/proof/inclusion?index=x", cairn.EInvalid},
		{"/log/acme/app/proof/inclusion", cairn.EInvalid},
		{"/log/acme/app/proof/inclusion?index=1&leaf_hash=" + url.QueryEscape(lh), cairn.EInvalid},
		{"/log/acme/app/proof/inclusion?leaf_hash=abc", cairn.EInvalid},
		{"/log/acme/app/proof/inclusion?leaf_hash=" + url.QueryEscape(unknown), cairn.ENotFound},
		{"/log/acme/app/proof/inclusion?leaf_hash=" + url.QueryEscape(lh) + "&size=4242", cairn.ENotFound},
		{"/log/acme/app/proof/inclusion?index=1&bogus=2", cairn.EInvalid},
		{fmt.Sprintf("/log/acme/app/proof/consistency?from=1&to=%d", cp.Size+1), cairn.ENotFound},
		{"/log/acme/app/proof/consistency?from=10&to=5", cairn.EInvalid},
		{"/log/acme/app/proof/consistency?to=5", cairn.EInvalid},
		{"/log/acme/nope/proof/consistency?from=1", cairn.ENotFound},
		{"/log/other/app/proof/consistency?from=1", cairn.ENotFound},
	} {
		if _, body, _ := f.get(tc.path, true); errCode(body) != tc.code {
			t.Errorf("%s: %s, want %s", tc.path, body, tc.code)
		}
	}
	if _, body, _ := f.get("/log/acme/app/proof/inclusion?index=0", false); errCode(body) != cairn.EUnauthorized {
		t.Errorf("proof without a key: %s", body)
	}
}

func TestTileEndpoint(t *testing.T) {
	f := newLogFixture(t)
	cp := f.grow(600)
	f.grow(700) // signed later: tiles up to 700 are served
	// Appended but not signed: not served.
	req := &cairn.AppendRequest{Org: "acme", Context: "app", Entries: []cairn.Entry{storetest.NewEntry("acme", "app", cairn.Event{Action: "x.y"})}}
	if _, err := f.store.Append(t.Context(), []*cairn.AppendRequest{req}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path         string
		status       int
		cacheControl string
	}{
		{"tile/0/000", 200, cacheFullTile},
		{"tile/0/001", 200, cacheFullTile},
		{"tile/0/002.p/88", 200, cachePartialTile},  // 600 = 2*256 + 88, the older checkpoint
		{"tile/0/002.p/188", 200, cachePartialTile}, // 700
		{"tile/0/002.p/189", 404, ""},               // 701: committed, not signed
		{"tile/1/000.p/2", 200, cachePartialTile},
		{"tile/1/000", 404, ""},
		{"tile/entries/000", 200, cacheFullTile},
		{"tile/entries/002.p/188", 200, cachePartialTile},
		{"tile/entries/002.p/189", 404, ""},
		{"tile/entries/003", 404, ""},
		{"tile/0/x001/000", 404, ""},
		{"tile/0/2", 400, ""},
		{"tile/data/000", 400, ""},
		{"tile/0/000.p/0", 400, ""},
	} {
		status, body, h := f.get("/log/acme/app/"+tc.path, true)
		if status != tc.status || h.Get("Cache-Control") != tc.cacheControl {
			t.Errorf("%s: %d %q, want %d %q (%s)", tc.path, status, h.Get("Cache-Control"), tc.status, tc.cacheControl, body)
			continue
		}
		if status == 200 && h.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("%s: content type %q", tc.path, h.Get("Content-Type"))
		}
	}
	_, body, _ := f.get("/log/acme/app/tile/entries/002.p/88", true)
	for i := 512; i < 600; i++ {
		e, rest, err := torchwood.ReadTileEntry(body)
		if err != nil || !bytes.Equal(e, f.leaves[i]) {
			t.Fatalf("bundle entry %d: %v", i, err)
		}
		body = rest
	}
	if status, body, _ := f.get("/log/acme/app/tile/0/000", false); status != 401 || errCode(body) != cairn.EUnauthorized {
		t.Errorf("tile without a key: %d %s", status, body)
	}
	// Gzip when asked for it (Go's client asks and undoes it by itself).
	r, _ := http.NewRequest("GET", f.url+"/log/acme/app/tile/entries/000", nil)
	r.Header.Set("Authorization", "Bearer "+f.token)
	r.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("entry bundle with Accept-Encoding: gzip: %v %v", err, resp.Header)
	}
	resp.Body.Close()

	// The checkpoint history needs readAudit (see the permission matrix).
	if status, _, _ := f.get("/log/acme/app/checkpoints?limit=1", false); status != http.StatusUnauthorized {
		t.Fatalf("anonymous checkpoint history: %d", status)
	}
	status, body, _ := f.get("/log/acme/app/checkpoints?limit=1", true)
	var page CheckpointPage
	if json.Unmarshal(body, &page); status != 200 || len(page.Checkpoints) != 1 || page.Checkpoints[0].Size != cp.Size || page.NextFrom == nil {
		t.Fatalf("checkpoint history: %d %s", status, body)
	}
	status, body, _ = f.get(fmt.Sprintf("/log/acme/app/checkpoints?from=%d", *page.NextFrom), true)
	if json.Unmarshal(body, &page); status != 200 || len(page.Checkpoints) != 1 || page.Checkpoints[0].Size != 700 || page.NextFrom != nil {
		t.Fatalf("checkpoint history, page 2: %d %s", status, body)
	}
	if !strings.HasPrefix(page.Checkpoints[0].Note, f.origin+"\n700\n") {
		t.Fatalf("note %q", page.Checkpoints[0].Note)
	}
	for _, q := range []string{"from=5&to=4", "limit=0", "limit=1001", "from=x", "size=1"} {
		if _, body, _ := f.get("/log/acme/app/checkpoints?"+q, true); errCode(body) != cairn.EInvalid {
			t.Errorf("checkpoints?%s: %s", q, body)
		}
	}
	if _, body, _ := f.get("/log/acme/nope/checkpoints", true); errCode(body) != cairn.ENotFound {
		t.Errorf("checkpoints of an unknown log: %s", body)
	}
}

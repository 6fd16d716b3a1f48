package httpapi

import (
	"archive/tar"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"
	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/ingest"
	"github.com/cairn-audit/cairn/verify"
	"github.com/transparency-dev/formats/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api"
	tclient "github.com/transparency-dev/tessera/client"
	"github.com/transparency-dev/tessera/fsck"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// tesseraFsck runs Tessera's fsck (it rebuilds every tile from the entry
// bundles and compares it and the root with the log's) over a fetcher.
func tesseraFsck(t *testing.T, f *logFixture, src fsck.Fetcher) {
	t.Helper()
	v, err := note.NewVerifier(f.vkey)
	if err != nil {
		t.Fatal(err)
	}
	hasher := func(bundle []byte) ([][]byte, error) {
		eb := &api.EntryBundle{}
		if err := eb.UnmarshalText(bundle); err != nil {
			return nil, err
		}
		out := make([][]byte, len(eb.Entries))
		for i, e := range eb.Entries {
			out[i] = rfc6962.DefaultHasher.HashLeaf(e)
		}
		return out, nil
	}
	if err := fsck.New(f.origin, v, src, hasher, fsck.Opts{N: 2}).Check(t.Context()); err != nil {
		t.Fatalf("tessera fsck: %v", err)
	}
}

func TestReceipts(t *testing.T) {
	f := newLogFixture(t)
	f.run()
	policy := torchwood.ThresholdPolicy(2, torchwood.OriginPolicy(f.origin), torchwood.SingleVerifierPolicy(mustVerifier(t, f.vkey)))

	// ?receipt=true waits for the covering checkpoint and returns the
	// receipt inline, for single writes and batches.
	for _, body := range []string{`{"action":"doc.read"}`, `[{"action":"a.b"},{"nope":1},{"action":"c.d"}]`} {
		req, _ := http.NewRequest("POST", f.url+"/api/v1/orgs/acme/contexts/app/events?receipt=true", strings.NewReader(body))
		start := time.Now()
		resp, err := f.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("write with receipt: %d %s", resp.StatusCode, raw)
		}
		t.Logf("write with receipt took %v", time.Since(start))
		var items []WriteResult
		if body[0] == '[' {
			var br BatchResult
			json.Unmarshal(raw, &br)
			items = br.Items
		} else {
			var wr WriteResult
			json.Unmarshal(raw, &wr)
			items = []WriteResult{wr}
		}
		for _, it := range items {
			if it.Error != nil {
				if it.Receipt != "" {
					t.Fatal("a rejected item got a receipt")
				}
				continue
			}
			if it.Receipt == "" || it.ReceiptError != nil {
				t.Fatalf("no receipt: %s", raw)
			}
			var p proof.TLogProof
			if err := p.Unmarshal([]byte(it.Receipt)); err != nil || int64(p.Index) != *it.Seq {
				t.Fatalf("receipt does not parse with formats/proof: %v", err)
			}
			leaf := f.eventLeaf(it.ID)
			if err := torchwood.VerifyProof(policy, tlog.RecordHash(leaf), []byte(it.Receipt)); err != nil {
				t.Fatalf("torchwood rejects the inline receipt: %v", err)
			}
		}
	}

	// GET .../receipt for a stored event.
	req, _ := http.NewRequest("POST", f.url+"/api/v1/orgs/acme/contexts/app/events", strings.NewReader(`{"action":"later.one"}`))
	resp, err := f.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var wr WriteResult
	json.NewDecoder(resp.Body).Decode(&wr)
	resp.Body.Close()
	status, receipt, h := f.get("/api/v1/orgs/acme/contexts/app/events/"+wr.ID+"/receipt", true)
	if status != 200 || h.Get("Content-Type") != "text/plain; charset=utf-8" || !strings.Contains(h.Get("Content-Disposition"), ".tlog-proof") {
		t.Fatalf("receipt: %d %v %s", status, h, receipt)
	}
	leaf := f.eventLeaf(wr.ID)
	if err := torchwood.VerifyProof(policy, tlog.RecordHash(leaf), receipt); err != nil {
		t.Fatalf("torchwood rejects the receipt: %v", err)
	}
	v, _ := verify.NewVerifier([]string{f.vkey}, "")
	if res := v.Receipt(leaf, receipt); !res.Valid || res.Index != *wr.Seq {
		t.Fatalf("verify rejects the receipt: %+v", res)
	}

	for _, tc := range []struct{ path, code string }{
		{"/api/v1/orgs/acme/contexts/app/events/0190a4e2-0000-7000-8000-000000000000/receipt", cairn.ENotFound},
		{"/api/v1/orgs/acme/contexts/app/events/garbage/receipt", cairn.ENotFound},
	} {
		if _, body, _ := f.get(tc.path, true); errCode(body) != tc.code {
			t.Errorf("%s: %s", tc.path, body)
		}
	}
	for _, q := range []string{"receipt=maybe", "receipt=true&async=true"} {
		req, _ := http.NewRequest("POST", f.url+"/api/v1/orgs/acme/contexts/app/events?"+q, strings.NewReader(`{"action":"a.b"}`))
		resp, _ := f.client().Do(req)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if errCode(raw) != cairn.EInvalid {
			t.Errorf("?%s: %s", q, raw)
		}
	}
}

// TestReceiptWithoutCheckpoint: when no checkpoint covers the event in
// time the write still commits (201) and says why the receipt is missing,
// and GET .../receipt answers 503 to retry.
func TestReceiptWithoutCheckpoint(t *testing.T) {
	f := newLogFixture(t) // its checkpointer is not running
	f.grow(3)
	c := ingest.NewCommitter(ingest.CommitterConfig{Store: f.store})
	t.Cleanup(func() { c.Close() })
	srv := httptest.NewServer(New(Config{Store: f.store, Committer: c, Signer: f.signer, Checkpoints: f.cp, ReceiptWait: 50 * time.Millisecond}))
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/orgs/acme/contexts/app/events?receipt=true", strings.NewReader(`{"action":"x.late"}`))
	resp, err := f.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var wr WriteResult
	json.NewDecoder(resp.Body).Decode(&wr)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || wr.Seq == nil || *wr.Seq != 3 || wr.Receipt != "" ||
		wr.ReceiptError == nil || wr.ReceiptError.Code != cairn.EUnavailable {
		t.Fatalf("write whose checkpoint never comes: %d %+v", resp.StatusCode, wr)
	}
	req, _ = http.NewRequest("GET", srv.URL+"/api/v1/orgs/acme/contexts/app/events/"+wr.ID+"/receipt", nil)
	resp, err = f.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || errCode(body) != cairn.EUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("receipt before any covering checkpoint: %d %s", resp.StatusCode, body)
	}
}

func TestExport(t *testing.T) {
	f := newLogFixture(t)
	f.grow(10)
	f.grow(300)
	cp := f.grow(1000)
	resp, err := f.client().Get(f.url + "/api/v1/orgs/acme/contexts/app/export")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ExportContentType {
		t.Fatalf("export: %d %v", resp.StatusCode, resp.Header)
	}
	dir := t.TempDir()
	tr := tar.NewReader(resp.Body)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		p := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		data, _ := io.ReadAll(tr)
		os.WriteFile(p, data, 0o644)
	}
	if names[0] != verify.ManifestFile || !strings.Contains(strings.Join(names, " "), "tile/entries/003.p/232 ") {
		t.Fatalf("export files: %v", names)
	}
	d, _ := verify.OpenDir(dir)
	m, err := d.Manifest()
	if err != nil || m.TreeSize != cp.Size || m.Checkpoints != 3 || m.Origin != f.origin {
		t.Fatalf("manifest: %+v %v", m, err)
	}
	res, err := verify.Log(t.Context(), d, verify.Options{Keys: []string{f.vkey}})
	if err != nil || !res.Valid() || res.Summary() != "1000/1000 entries valid, 3/3 checkpoints valid and consistent" {
		t.Fatalf("verify the export: %v %s %v", err, res.Summary(), res.Problems)
	}
	// Tessera's fsck reads the exported directory as a tlog-tiles log.
	tesseraFsck(t, f, &tclient.FileFetcher{Root: dir})

	if _, body, _ := f.get("/api/v1/orgs/acme/contexts/app/export", false); errCode(body) != cairn.EUnauthorized {
		t.Errorf("export without a key: %s", body)
	}
	if _, body, _ := f.get("/api/v1/orgs/acme/contexts/cairn/export", true); errCode(body) != cairn.ENotFound {
		t.Errorf("export of a log without checkpoints: %s", body)
	}
}

func mustVerifier(t *testing.T, vkey string) note.Verifier {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// eventLeaf returns the stored leaf of an event.
func (f *logFixture) eventLeaf(id string) []byte {
	f.t.Helper()
	e, err := f.store.GetEvent(f.t.Context(), "acme", "app", id)
	if err != nil {
		f.t.Fatal(err)
	}
	return e.Leaf
}

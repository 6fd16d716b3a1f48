package anchor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cairn-audit/cairn"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// memSource is a Source with settable checkpoints.
type memSource struct {
	mu    sync.Mutex
	notes map[string]*cairn.Checkpoint // "org/context" → checkpoint
}

func (m *memSource) ListOrgs(ctx context.Context) ([]*cairn.Org, error) {
	return []*cairn.Org{{Name: "acme"}}, nil
}

func (m *memSource) ListContexts(ctx context.Context, org string) ([]*cairn.Context, error) {
	return []*cairn.Context{{Org: org, Name: "app"}, {Org: org, Name: "billing"}, {Org: org, Name: "empty"}}, nil
}

func (m *memSource) LatestCheckpoint(ctx context.Context, org, name string) (*cairn.Checkpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp, ok := m.notes[org+"/"+name]
	if !ok {
		return nil, cairn.Errorf(cairn.ENotFound, "none")
	}
	return cp, nil
}

func (m *memSource) set(name string, size int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	note := "cairn.test/acme/" + name + "\n" + string(rune('0'+size)) + "\nroot=\n\n— cairn.test/acme/" + name + " c2ln\n"
	m.notes["acme/"+name] = &cairn.Checkpoint{Size: size, Note: []byte(note)}
}

func newExporter(t *testing.T, sink Sink) (*Exporter, *memSource) {
	t.Helper()
	src := &memSource{notes: map[string]*cairn.Checkpoint{}}
	src.set("app", 1)
	src.set("billing", 2)
	e, err := New(Config{Source: src, Sink: sink, Interval: 1, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return e, src
}

func readHistory(t *testing.T, dir string) []map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("history line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestDirSink(t *testing.T) {
	dir := t.TempDir()
	sink, err := NewSink("dir:"+dir, "")
	if err != nil {
		t.Fatal(err)
	}
	e, src := newExporter(t, sink)
	if err := e.ExportAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	check := func(name string) {
		t.Helper()
		got, err := os.ReadFile(filepath.Join(dir, "cairn.test", "acme", name, "checkpoint"))
		if err != nil {
			t.Fatal(err)
		}
		cp, _ := src.LatestCheckpoint(t.Context(), "acme", name)
		if !bytes.Equal(got, cp.Note) {
			t.Fatalf("exported %s = %q, want %q", name, got, cp.Note)
		}
	}
	check("app")
	check("billing")
	if h := readHistory(t, dir); len(h) != 2 {
		t.Fatalf("history has %d lines, want 2", len(h))
	}
	// Unchanged checkpoints are not written again; a changed one is.
	src.set("app", 5)
	if err := e.ExportAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	check("app")
	h := readHistory(t, dir)
	if len(h) != 3 || h[2]["origin"] != "cairn.test/acme/app" || h[2]["size"] != float64(5) ||
		!strings.HasPrefix(h[2]["note"].(string), "cairn.test/acme/app\n5\n") {
		t.Fatalf("history = %v", h)
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(filepath.Join(dir, "cairn.test", "acme", "app"))
	if len(entries) != 1 {
		t.Fatalf("export directory holds %d files, want 1", len(entries))
	}
	if got := counter(e.exports.WithLabelValues("ok")); got != 3 {
		t.Fatalf("ok exports = %v, want 3", got)
	}
}

func TestDirSinkFailure(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e, _ := newExporter(t, &DirSink{Dir: blocker}) // a file, not a directory
	if err := e.ExportAll(t.Context()); err == nil {
		t.Fatal("export into a file succeeded")
	}
	if got := counter(e.exports.WithLabelValues("error")); got != 2 {
		t.Fatalf("failed exports = %v, want 2", got)
	}
	if err := (&DirSink{Dir: dir}).Export(t.Context(), "../escape", 1, []byte("x\n")); cairn.ErrorCode(err) != cairn.EInvalid {
		t.Fatalf("origin escaping the directory: %v, want invalid", err)
	}
}

func TestHTTPSink(t *testing.T) {
	var mu sync.Mutex
	got := map[string]string{}
	fail := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer s3cret" ||
			r.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if fail {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		got[r.Header.Get("X-Cairn-Origin")] = string(body)
	}))
	defer srv.Close()
	sink, err := NewSink(srv.URL+"/anchor", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	e, src := newExporter(t, sink)
	err = e.ExportAll(t.Context())
	if cairn.ErrorCode(err) != cairn.EUnavailable {
		t.Fatalf("export to a failing endpoint: %v, want unavailable", err)
	}
	if n := counter(e.exports.WithLabelValues("error")); n != 2 {
		t.Fatalf("failed exports = %v, want 2", n)
	}
	// The next round sends what failed.
	mu.Lock()
	fail = false
	mu.Unlock()
	if err := e.ExportAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"app", "billing"} {
		cp, _ := src.LatestCheckpoint(t.Context(), "acme", name)
		if got["cairn.test/acme/"+name] != string(cp.Note) {
			t.Fatalf("endpoint got %q for %s, want %q", got["cairn.test/acme/"+name], name, cp.Note)
		}
	}
	if strings.Contains(sink.String(), "s3cret") {
		t.Fatal("the sink's name reveals its token")
	}
}

func TestNewSink(t *testing.T) {
	for _, bad := range []string{"", "dir:", "ftp://x", "/plain/path", "https://user:pw@host/x", "https://"} {
		if _, err := NewSink(bad, ""); cairn.ErrorCode(err) != cairn.EInvalid {
			t.Errorf("NewSink(%q): %v, want invalid", bad, err)
		}
	}
}

func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

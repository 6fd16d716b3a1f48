package anchor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-audit/cairn"
)

// NewSink returns the sink a --checkpoint-export value names:
// "dir:/path" for a [DirSink], or an "https://" (or "http://") URL for an
// [HTTPSink] that sends token, if any, as a bearer token.
//
// Errors: EInvalid for any other value.
func NewSink(spec, token string) (Sink, error) {
	switch {
	case strings.HasPrefix(spec, "dir:"):
		dir := strings.TrimPrefix(spec, "dir:")
		if dir == "" {
			return nil, cairn.Errorf(cairn.EInvalid, "checkpoint export: dir: needs a path")
		}
		return &DirSink{Dir: dir}, nil
	case strings.HasPrefix(spec, "https://") || strings.HasPrefix(spec, "http://"):
		u, err := url.Parse(spec)
		if err != nil || u.Host == "" || u.User != nil {
			return nil, cairn.Errorf(cairn.EInvalid, "checkpoint export: a URL with a host and no user info")
		}
		return &HTTPSink{URL: spec, Token: token}, nil
	}
	return nil, cairn.Errorf(cairn.EInvalid, "checkpoint export: want dir:/path or an https:// URL")
}

// HistoryFile is the name of the DirSink's append-only history.
const HistoryFile = "checkpoints.history"

// DirSink writes each origin's latest checkpoint to
// <Dir>/<origin>/checkpoint (so <Dir> mirrors the logs' URL layout), and
// appends every exported checkpoint to <Dir>/checkpoints.history, one JSON
// object a line: {"exported_at", "origin", "size", "note"}.
//
// The checkpoint file is replaced atomically (written and fsynced under a
// temporary name in the same directory, renamed, directory fsynced); the
// history line is fsynced before Export returns.
type DirSink struct {
	Dir string
	// Now stamps history lines (default time.Now).
	Now func() time.Time
}

func (d *DirSink) String() string { return "dir:" + d.Dir }

// Export implements Sink.
func (d *DirSink) Export(ctx context.Context, origin string, size int64, note []byte) error {
	if !filepath.IsLocal(filepath.FromSlash(origin)) {
		return cairn.Errorf(cairn.EInvalid, "origin %q cannot name a file under the export directory", origin)
	}
	dir := filepath.Join(d.Dir, filepath.FromSlash(origin))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("export dir: %w", err)
	}
	if err := writeAtomic(filepath.Join(dir, "checkpoint"), note); err != nil {
		return err
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	line, err := json.Marshal(struct {
		ExportedAt time.Time `json:"exported_at"`
		Origin     string    `json:"origin"`
		Size       int64     `json:"size"`
		Note       string    `json:"note"`
	}{now().UTC(), origin, size, string(note)})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(d.Dir, HistoryFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("export history: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("export history: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("export history: %w", err)
	}
	return f.Close()
}

// writeAtomic replaces path with data: temporary file, fsync, rename,
// directory fsync.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".checkpoint-*")
	if err != nil {
		return fmt.Errorf("export checkpoint: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("export checkpoint: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("export checkpoint: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("export checkpoint: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("export checkpoint: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("export checkpoint: %w", err)
	}
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("export checkpoint: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("export checkpoint: %w", err)
	}
	return nil
}

// HTTPSink POSTs each checkpoint note to URL as text/plain, with headers
// X-Cairn-Origin and X-Cairn-Tree-Size and, if Token is set,
// "Authorization: Bearer <Token>". Any 2xx answer is success.
type HTTPSink struct {
	URL   string
	Token string
	// HTTP sends the requests (default: a client with a 30 s timeout).
	HTTP *http.Client
}

// String names the sink without its query (which may carry credentials).
func (h *HTTPSink) String() string {
	u, err := url.Parse(h.URL)
	if err != nil {
		return "http"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// ExportUserAgent identifies Cairn's checkpoint exports.
const ExportUserAgent = "Cairn-Checkpoint-Export/1.0"

// Export implements Sink.
func (h *HTTPSink) Export(ctx context.Context, origin string, size int64, note []byte) error {
	hc := h.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(note))
	if err != nil {
		return &cairn.Error{Code: cairn.EInvalid, Message: "bad export URL", Err: err}
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	req.Header.Set("User-Agent", ExportUserAgent)
	req.Header.Set("X-Cairn-Origin", origin)
	req.Header.Set("X-Cairn-Tree-Size", strconv.FormatInt(size, 10))
	if h.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		// Drop the URL (its query may hold credentials) from the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &cairn.Error{Code: cairn.EUnavailable, Message: "cannot reach the export endpoint", Err: err}
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return cairn.Errorf(cairn.EUnavailable, "the export endpoint answered HTTP %d", resp.StatusCode)
	}
	return nil
}

package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"
)

// Source is where a log is read from: an export directory ([Dir]), a
// server ([HTTP]), or anything else that can produce tiles.
type Source interface {
	// ReadTile returns the contents of tile t: a Merkle tile (32-byte
	// hashes), or for L = -1 an entry bundle. A tile the log does not have
	// is an error wrapping ErrMissing; any other error is an I/O failure.
	ReadTile(ctx context.Context, t tlog.Tile) ([]byte, error)
	// Checkpoints returns the signed checkpoints the log publishes
	// (verbatim signed notes, any order).
	Checkpoints(ctx context.Context) ([][]byte, error)
	// Keys returns the verifier keys the log publishes. Only used when the
	// caller pins none.
	Keys(ctx context.Context) ([]string, error)
}

// ErrMissing marks a tile or entry bundle the log cannot produce. Below
// the size of a signed checkpoint that is a verification failure: the
// checkpoint commits to it.
var ErrMissing = errors.New("not in the log")

// HTTP reads a log from a Cairn server's C2SP tlog-tiles endpoints under
// one log prefix, e.g. https://cairn.example.com/log/acme/payments.
type HTTP struct {
	base   string
	token  string
	client *http.Client
}

// NewHTTP returns a Source for the log at base. token, if set, is sent as
// a bearer token (tiles and entries need one); client defaults to
// http.DefaultClient.
func NewHTTP(base, token string, client *http.Client) (*HTTP, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL", base)
	}
	if client == nil {
		client = http.DefaultClient
	}
	return &HTTP{base: strings.TrimRight(base, "/"), token: token, client: client}, nil
}

// maxTileSize bounds a response: a full entry bundle is at most 256
// entries of 2 + 65,535 bytes.
const maxTileSize = 256 * (2 + 65535)

// get fetches base/path. 404, and a server's "integrity" error (it holds
// less than it signed), are ErrMissing.
func (h *HTTP) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", h.base+"/"+path, nil)
	if err != nil {
		return nil, err
	}
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("GET %s: response larger than %d bytes", path, limit)
	}
	if resp.StatusCode == http.StatusOK {
		return body, nil
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal(body, &e)
	if resp.StatusCode == http.StatusNotFound || e.Error.Code == "integrity" {
		return nil, fmt.Errorf("GET %s: %s %s: %w", path, resp.Status, e.Error.Message, ErrMissing)
	}
	return nil, fmt.Errorf("GET %s: %s %s", path, resp.Status, e.Error.Message)
}

// ReadTile implements Source.
func (h *HTTP) ReadTile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	return h.get(ctx, torchwood.TilePath(t), maxTileSize)
}

// Checkpoints implements Source, paging through the server's checkpoint
// history; a server without one yields only its latest checkpoint.
func (h *HTTP) Checkpoints(ctx context.Context) ([][]byte, error) {
	var out [][]byte
	from := int64(0)
	for {
		body, err := h.get(ctx, "checkpoints?from="+strconv.FormatInt(from, 10), 64<<20)
		if errors.Is(err, ErrMissing) && from == 0 {
			latest, err := h.get(ctx, CheckpointFile, maxNoteSize)
			if err != nil {
				return nil, err
			}
			return [][]byte{latest}, nil
		}
		if err != nil {
			return nil, err
		}
		var page struct {
			Checkpoints []struct {
				Note string `json:"note"`
			} `json:"checkpoints"`
			NextFrom *int64 `json:"next_from"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, fmt.Errorf("checkpoint history: %w", err)
		}
		for _, c := range page.Checkpoints {
			out = append(out, []byte(c.Note))
		}
		if page.NextFrom == nil || *page.NextFrom <= from {
			return out, nil
		}
		from = *page.NextFrom
	}
}

// Keys implements Source.
func (h *HTTP) Keys(ctx context.Context) ([]string, error) {
	body, err := h.get(ctx, "key", maxNoteSize)
	if err != nil {
		return nil, err
	}
	return ParseKeys(body), nil
}

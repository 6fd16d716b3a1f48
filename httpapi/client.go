package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/cairn-audit/cairn"
)

// Client talks to a Cairn server. The CLI and the end-to-end tests use it.
// Errors from the server come back as *cairn.Error with the server's code.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:8080
	Token   string
	HTTP    *http.Client
}

// EventPage is a page of events; each item is an event's canonical JSON.
type EventPage struct {
	Items      []json.RawMessage `json:"items"`
	NextCursor *string           `json:"next_cursor"`
}

// WriteOptions modify an event write.
type WriteOptions struct {
	ContentType    string // default application/json
	Async          bool
	IdempotencyKey string
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// Do sends a request and decodes a JSON response into out (if non-nil).
// It returns the HTTP status; a non-2xx status is returned as an error.
func (c *Client) Do(ctx context.Context, method, path string, q url.Values, body io.Reader, header http.Header, out any) (int, error) {
	u := strings.TrimRight(c.BaseURL, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return 0, &cairn.Error{Code: cairn.EUnavailable, Message: fmt.Sprintf("cannot reach %s: %v", c.BaseURL, err), Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode >= 300 {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
			return resp.StatusCode, &cairn.Error{Code: eb.Error.Code, Message: eb.Error.Message}
		}
		return resp.StatusCode, cairn.Errorf(cairn.EInternal, "%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if out != nil {
		if raw, ok := out.(*[]byte); ok {
			*raw = data
			return resp.StatusCode, nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode response: %w", err)
		}
	}
	return resp.StatusCode, nil
}

func orgPath(org string) string { return "/api/v1/orgs/" + url.PathEscape(org) }

func ctxPath(org, name string) string { return orgPath(org) + "/contexts/" + url.PathEscape(name) }

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

// CreateContext creates an audit context.
func (c *Client) CreateContext(ctx context.Context, org, name, description string, tags map[string]string) (*ContextView, error) {
	var out ContextView
	_, err := c.Do(ctx, "POST", orgPath(org)+"/contexts", nil,
		jsonBody(map[string]any{"name": name, "description": description, "tags": tags}), nil, &out)
	return &out, err
}

// GetContext returns an audit context.
func (c *Client) GetContext(ctx context.Context, org, name string) (*ContextView, error) {
	var out ContextView
	_, err := c.Do(ctx, "GET", ctxPath(org, name), nil, nil, nil, &out)
	return &out, err
}

// WriteEvents posts a raw body (one event, a JSON array or NDJSON) and
// returns the raw response body and status.
func (c *Client) WriteEvents(ctx context.Context, org, name string, body []byte, o WriteOptions) (int, []byte, error) {
	h := http.Header{}
	if o.ContentType != "" {
		h.Set("Content-Type", o.ContentType)
	}
	if o.IdempotencyKey != "" {
		h.Set("Idempotency-Key", o.IdempotencyKey)
	}
	var q url.Values
	if o.Async {
		q = url.Values{"async": {"true"}}
	}
	var out []byte
	status, err := c.Do(ctx, "POST", ctxPath(org, name)+"/events", q, bytes.NewReader(body), h, &out)
	return status, out, err
}

// Search runs an org-wide search with the API's query parameters.
func (c *Client) Search(ctx context.Context, org string, q url.Values) (*EventPage, error) {
	var out EventPage
	_, err := c.Do(ctx, "GET", orgPath(org)+"/events", q, nil, nil, &out)
	return &out, err
}

// Trail returns one page of an object's trail.
func (c *Client) Trail(ctx context.Context, org, targetType, targetID string, q url.Values) (*EventPage, error) {
	var out EventPage
	_, err := c.Do(ctx, "GET", orgPath(org)+"/trail/"+url.PathEscape(targetType)+"/"+url.PathEscape(targetID), q, nil, nil, &out)
	return &out, err
}

// GetEvent returns one event with its leaf and leaf hash, as raw JSON.
func (c *Client) GetEvent(ctx context.Context, org, name, id string) ([]byte, error) {
	var out []byte
	_, err := c.Do(ctx, "GET", ctxPath(org, name)+"/events/"+url.PathEscape(id), nil, nil, nil, &out)
	return out, err
}

// Checkpoint returns the latest signed checkpoint of a log.
func (c *Client) Checkpoint(ctx context.Context, org, name string) ([]byte, error) {
	var out []byte
	_, err := c.Do(ctx, "GET", "/log/"+url.PathEscape(org)+"/"+url.PathEscape(name)+"/checkpoint", nil, nil, nil, &out)
	return out, err
}

// VerifierKey returns the note verifier key of a log.
func (c *Client) VerifierKey(ctx context.Context, org, name string) (string, error) {
	var out []byte
	_, err := c.Do(ctx, "GET", "/log/"+url.PathEscape(org)+"/"+url.PathEscape(name)+"/key", nil, nil, nil, &out)
	return strings.TrimSpace(string(out)), err
}

// PatchContext edits a context; body holds the fields to change (see the
// API reference), e.g. {"witnesses": [...], "witness_quorum": 1}.
func (c *Client) PatchContext(ctx context.Context, org, name string, body map[string]any) (*ContextView, error) {
	var out ContextView
	_, err := c.Do(ctx, "PATCH", ctxPath(org, name), nil, jsonBody(body), nil, &out)
	return &out, err
}

// Keys returns the signing-key history of a log.
func (c *Client) Keys(ctx context.Context, org, name string) (*KeysView, error) {
	var out KeysView
	_, err := c.Do(ctx, "GET", "/log/"+url.PathEscape(org)+"/"+url.PathEscape(name)+"/keys", nil, nil, nil, &out)
	return &out, err
}

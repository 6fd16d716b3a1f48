package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/cairn-audit/cairn"
)

// LogURL returns the C2SP tlog-tiles prefix of a context's log on the
// server, e.g. http://127.0.0.1:8080/log/default/app.
func (c *Client) LogURL(org, name string) string {
	return strings.TrimRight(c.BaseURL, "/") + "/log/" + url.PathEscape(org) + "/" + url.PathEscape(name)
}

// Receipt returns an event's C2SP tlog-proof.
func (c *Client) Receipt(ctx context.Context, org, name, id string) ([]byte, error) {
	var out []byte
	_, err := c.Do(ctx, "GET", ctxPath(org, name)+"/events/"+url.PathEscape(id)+"/receipt", nil, nil, nil, &out)
	return out, err
}

// Export opens the export stream (a tar archive, see ExportContentType) of
// a context's log. The caller closes it; a stream that ends early is an
// incomplete export and reads fail with an error.
func (c *Client) Export(ctx context.Context, org, name string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(c.BaseURL, "/")+ctxPath(org, name)+"/export", nil)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, &cairn.Error{Code: cairn.EUnavailable, Message: fmt.Sprintf("cannot reach %s: %v", c.BaseURL, err), Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var eb ErrorBody
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
			return nil, &cairn.Error{Code: eb.Error.Code, Message: eb.Error.Message}
		}
		return nil, cairn.Errorf(cairn.EInternal, "export: HTTP %d", resp.StatusCode)
	}
	return resp.Body, nil
}

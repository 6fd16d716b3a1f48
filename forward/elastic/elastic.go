// Package elastic is the Elasticsearch (and OpenSearch) forwarder sink:
// one _bulk request per batch, a "create" action per event with the
// event's id as the document _id, so an event sent twice is stored once
// (the second create answers 409, which counts as delivered). Documents
// are ECS by default. It never logs bodies or credentials.
package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/forward"
)

// Settings are the Elastic sink's settings.
type Settings struct {
	// URL is the cluster, e.g. https://es:9200. Required.
	URL string `json:"url"`
	// Index is the index or data stream written to. Required.
	Index string `json:"index"`
	// APIKey ("Authorization: ApiKey <api_key>", the base64 id:key) or
	// Username and Password (basic auth). APIKey and Password are
	// secrets.
	APIKey   string              `json:"api_key,omitempty"`
	Username string              `json:"username,omitempty"`
	Password string              `json:"password,omitempty"`
	TLS      forward.TLSSettings `json:"tls,omitzero"`
}

// Type is the Elastic sink type.
var Type = forward.SinkType{
	Name:    "elastic",
	Secrets: []string{"api_key", "password"},
	Formats: []string{cairn.FormatECS, cairn.FormatJSON, cairn.FormatOCSF},
	New:     New,
}

// Sink writes batches with the bulk API.
type Sink struct {
	s      Settings
	url    string
	client *http.Client
}

// New checks the settings and returns a Sink; it does no I/O.
func New(settings map[string]any, env forward.Env) (forward.Sink, error) {
	var s Settings
	if err := forward.DecodeSettings(settings, &s); err != nil {
		return nil, err
	}
	u, err := forward.ParseURL(s.URL, env.Guard)
	if err != nil {
		return nil, err
	}
	if s.Index == "" || strings.ContainsAny(s.Index, `/\*?"<>| ,#`) || strings.ToLower(s.Index) != s.Index {
		return nil, cairn.Errorf(cairn.EInvalid, "elastic index must be a lowercase index or data stream name")
	}
	if s.APIKey != "" && s.Username != "" {
		return nil, cairn.Errorf(cairn.EInvalid, "elastic takes api_key or username and password, not both")
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/_bulk"
	tlsc, err := s.TLS.Config(u.Hostname())
	if err != nil {
		return nil, err
	}
	return &Sink{s: s, url: u.String(), client: forward.HTTPClient(env, tlsc)}, nil
}

// Body returns the NDJSON bulk body of a batch.
func (k *Sink) Body(b *forward.Batch) []byte {
	var buf bytes.Buffer
	for _, r := range b.Records {
		fmt.Fprintf(&buf, `{"create":{"_index":%q,"_id":%q}}`+"\n", k.s.Index, r.Event.ID)
		buf.Write(r.Body)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

type bulkResponse struct {
	Errors bool                         `json:"errors"`
	Items  []map[string]bulkItemOutcome `json:"items"`
}

type bulkItemOutcome struct {
	Status int `json:"status"`
	Error  *struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
	} `json:"error"`
}

// Send implements forward.Sink. Items are checked in order: the leading
// items that were created (or already existed) are acknowledged; the
// first other item fails the rest of the batch.
func (k *Sink) Send(ctx context.Context, b *forward.Batch) (cairn.SinkAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.url, bytes.NewReader(k.Body(b)))
	if err != nil {
		return cairn.SinkAnswer{}, cairn.Errorf(cairn.EInvalid, "bulk request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("User-Agent", forward.UserAgent)
	switch {
	case k.s.APIKey != "":
		req.Header.Set("Authorization", "ApiKey "+k.s.APIKey)
	case k.s.Username != "":
		req.SetBasicAuth(k.s.Username, k.s.Password)
	}
	status, body, err := forward.DoHTTP(k.client, req)
	if err != nil {
		return cairn.SinkAnswer{}, err
	}
	var resp bulkResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return cairn.SinkAnswer{}, cairn.Errorf(cairn.EUnavailable, "unreadable _bulk answer (HTTP %d)", status)
	}
	if len(resp.Items) != len(b.Records) {
		return cairn.SinkAnswer{}, cairn.Errorf(cairn.EUnavailable, "_bulk answered %d items for %d events", len(resp.Items), len(b.Records))
	}
	for i, item := range resp.Items {
		o, ok := item["create"]
		if !ok {
			return cairn.SinkAnswer{Acked: i}, cairn.Errorf(cairn.EUnavailable, "_bulk item %d has no create outcome", i)
		}
		if o.Status >= 200 && o.Status < 300 || o.Status == http.StatusConflict {
			continue // created, or created by an earlier delivery
		}
		code := cairn.EInvalid
		if o.Status == http.StatusTooManyRequests || o.Status >= 500 {
			code = cairn.EUnavailable
		}
		why := ""
		if o.Error != nil {
			why = ": " + o.Error.Type + ": " + truncate(o.Error.Reason, 200)
		}
		return cairn.SinkAnswer{Acked: i}, cairn.Errorf(code, "_bulk refused event %s (seq %d) with status %d%s",
			b.Records[i].Event.ID, b.Records[i].Event.Seq, o.Status, why)
	}
	return cairn.SinkAnswer{Acked: len(b.Records), Detail: "HTTP " + strconv.Itoa(status) + ", " + strconv.Itoa(len(resp.Items)) + " items"}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Close implements forward.Sink.
func (k *Sink) Close() error {
	k.client.CloseIdleConnections()
	return nil
}

// Package hec is the Splunk HTTP Event Collector forwarder sink: one POST
// to /services/collector/event per batch, the events concatenated as HEC
// envelopes, "Authorization: Splunk <token>".
//
// HEC's 200 means the events were accepted ("valid"), not indexed;
// indexer acknowledgment is not used (see docs/forwarding.md). It never
// logs bodies or the token.
package hec

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/forward"
)

// Path is the HEC endpoint for JSON events.
const Path = "/services/collector/event"

// Settings are the HEC sink's settings.
type Settings struct {
	// URL is the collector, e.g. https://splunk:8088; Path is added when
	// the URL has no path. Required.
	URL string `json:"url"`
	// Token is the HEC token. Secret. Required.
	Token string `json:"token"`
	// Index, Source, SourceType and Host fill the envelope (defaults:
	// the token's index, source "cairn", sourcetype "cairn:<format>").
	Index      string              `json:"index,omitempty"`
	Source     string              `json:"source,omitempty"`
	SourceType string              `json:"sourcetype,omitempty"`
	Host       string              `json:"host,omitempty"`
	TLS        forward.TLSSettings `json:"tls,omitzero"`
}

// Type is the HEC sink type.
var Type = forward.SinkType{
	Name:    "splunk_hec",
	Secrets: []string{"token"},
	Formats: []string{cairn.FormatJSON, cairn.FormatOCSF, cairn.FormatECS},
	New:     New,
}

// Sink posts batches to a HEC endpoint.
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
	if s.Token == "" {
		return nil, cairn.Errorf(cairn.EInvalid, "splunk_hec needs a token")
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = Path
	}
	if s.Source == "" {
		s.Source = "cairn"
	}
	tlsc, err := s.TLS.Config(u.Hostname())
	if err != nil {
		return nil, err
	}
	return &Sink{s: s, url: u.String(), client: forward.HTTPClient(env, tlsc)}, nil
}

// envelope is one HEC event.
type envelope struct {
	Time       json.Number       `json:"time"`
	Host       string            `json:"host,omitempty"`
	Source     string            `json:"source"`
	SourceType string            `json:"sourcetype"`
	Index      string            `json:"index,omitempty"`
	Event      json.RawMessage   `json:"event"`
	Fields     map[string]string `json:"fields"`
}

// Body returns the HEC body of a batch: one envelope per event, each on
// its own line. time is the event time in epoch seconds with millisecond
// precision; the indexed fields carry org, context, seq and id.
func (k *Sink) Body(b *forward.Batch) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	st := k.s.SourceType
	if st == "" {
		st = "cairn:" + b.Format
	}
	for _, r := range b.Records {
		e := r.Event
		ms := e.EventTime.UnixMilli()
		t := strconv.FormatInt(ms/1000, 10) + "." + strconv.FormatInt(1000+ms%1000, 10)[1:]
		if ms < 0 {
			t = strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)
		}
		if err := enc.Encode(envelope{Time: json.Number(t), Host: k.s.Host, Source: k.s.Source, SourceType: st,
			Index: k.s.Index, Event: r.Body, Fields: map[string]string{
				"cairn_org": e.Org, "cairn_context": e.Context, "cairn_seq": strconv.FormatInt(e.Seq, 10), "cairn_id": e.ID,
			}}); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// Send implements forward.Sink.
func (k *Sink) Send(ctx context.Context, b *forward.Batch) (cairn.SinkAnswer, error) {
	body, err := k.Body(b)
	if err != nil {
		return cairn.SinkAnswer{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.url, bytes.NewReader(body))
	if err != nil {
		return cairn.SinkAnswer{}, cairn.Errorf(cairn.EInvalid, "hec request: %v", err)
	}
	req.Header.Set("Authorization", "Splunk "+k.s.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", forward.UserAgent)
	status, resp, err := forward.DoHTTP(k.client, req)
	if err != nil {
		return cairn.SinkAnswer{}, err
	}
	// {"text":"Success","code":0}
	var ans struct {
		Text string `json:"text"`
		Code int    `json:"code"`
	}
	if json.Unmarshal(resp, &ans) == nil && ans.Code != 0 {
		return cairn.SinkAnswer{}, cairn.Errorf(cairn.EInvalid, "HEC answered code %d: %s", ans.Code, strings.TrimSpace(ans.Text))
	}
	return cairn.SinkAnswer{Acked: len(b.Records), Detail: "HTTP " + strconv.Itoa(status) + " " + ans.Text}, nil
}

// Close implements forward.Sink.
func (k *Sink) Close() error {
	k.client.CloseIdleConnections()
	return nil
}

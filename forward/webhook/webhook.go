// Package webhook is the generic HTTP forwarder sink, with the settings of
// Chainloop's audit-log webhook (uri, bearer token, method, the fixed
// user agent Cairn-Audit-Logger/1.0) and optional Standard Webhooks
// signatures (webhook-id, webhook-timestamp, webhook-signature).
//
// A batch is one request whose body is a JSON array of the events in the
// forwarder's format (mode "batch"), or one request per event whose body
// is the event itself (mode "single"). Any 2xx answer acknowledges the
// request; redirects are not followed. It never logs bodies or secrets.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/forward"
)

// Settings are the webhook sink's settings.
type Settings struct {
	// URI receives the events (http:// or https://). Required.
	URI string `json:"uri"`
	// Token, if set, is sent as "Authorization: Bearer <token>". Secret.
	Token string `json:"token,omitempty"`
	// Method is POST (default) or PUT.
	Method string `json:"method,omitempty"`
	// Headers are static headers added to every request. Secret (they
	// often carry credentials).
	Headers map[string]string `json:"headers,omitempty"`
	// SigningSecret, if set, signs every request per Standard Webhooks:
	// "whsec_" followed by the base64 of the HMAC key (the prefix is
	// optional). Secret.
	SigningSecret string `json:"signing_secret,omitempty"`
	// Mode is "batch" (default: one request per batch, a JSON array) or
	// "single" (one request per event).
	Mode string              `json:"mode,omitempty"`
	TLS  forward.TLSSettings `json:"tls,omitzero"`
}

// Type is the webhook sink type.
var Type = forward.SinkType{
	Name:    "webhook",
	Secrets: []string{"token", "headers", "signing_secret"},
	Formats: []string{cairn.FormatJSON, cairn.FormatOCSF, cairn.FormatECS},
	New:     New,
}

// Sink posts batches to a URL.
type Sink struct {
	s      Settings
	key    []byte
	client *http.Client
	now    func() time.Time
}

// New checks the settings and returns a Sink; it does no I/O.
func New(settings map[string]any, env forward.Env) (forward.Sink, error) {
	var s Settings
	if err := forward.DecodeSettings(settings, &s); err != nil {
		return nil, err
	}
	u, err := forward.ParseURL(s.URI, env.Guard)
	if err != nil {
		return nil, err
	}
	switch s.Method = strings.ToUpper(s.Method); s.Method {
	case "":
		s.Method = http.MethodPost
	case http.MethodPost, http.MethodPut:
	default:
		return nil, cairn.Errorf(cairn.EInvalid, "webhook method must be POST or PUT")
	}
	switch s.Mode {
	case "":
		s.Mode = "batch"
	case "batch", "single":
	default:
		return nil, cairn.Errorf(cairn.EInvalid, `webhook mode must be "batch" or "single"`)
	}
	for k := range s.Headers {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Type", "Content-Length", "Host", "User-Agent", "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature":
			return nil, cairn.Errorf(cairn.EInvalid, "webhook header %q is set by Cairn", k)
		}
	}
	sink := &Sink{s: s, now: env.Now}
	if s.SigningSecret != "" {
		if sink.key, err = ParseSecret(s.SigningSecret); err != nil {
			return nil, err
		}
	}
	tlsc, err := s.TLS.Config(u.Hostname())
	if err != nil {
		return nil, err
	}
	sink.client = forward.HTTPClient(env, tlsc)
	if sink.now == nil {
		sink.now = time.Now
	}
	return sink, nil
}

// ParseSecret decodes a Standard Webhooks secret ("whsec_<base64>").
func ParseSecret(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) < 16 {
		return nil, cairn.Errorf(cairn.EInvalid, `webhook signing_secret must be "whsec_" and the base64 of at least 16 bytes`)
	}
	return key, nil
}

// Sign returns the Standard Webhooks signature of one message:
// "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)).
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, timestamp)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Send implements forward.Sink.
func (k *Sink) Send(ctx context.Context, b *forward.Batch) (cairn.SinkAnswer, error) {
	if k.s.Mode == "single" {
		for i, r := range b.Records {
			status, err := k.post(ctx, r.Event.ID, r.Body)
			if err != nil {
				return cairn.SinkAnswer{Acked: i}, err
			}
			if i == len(b.Records)-1 {
				return cairn.SinkAnswer{Acked: len(b.Records), Detail: "HTTP " + strconv.Itoa(status)}, nil
			}
		}
		return cairn.SinkAnswer{}, nil
	}
	var body bytes.Buffer
	body.WriteByte('[')
	for i, r := range b.Records {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(r.Body)
	}
	body.WriteByte(']')
	// The id stays the same when the same batch is sent again.
	id := fmt.Sprintf("%s.%d", b.Records[0].Event.ID, len(b.Records))
	status, err := k.post(ctx, id, body.Bytes())
	if err != nil {
		return cairn.SinkAnswer{}, err
	}
	return cairn.SinkAnswer{Acked: len(b.Records), Detail: "HTTP " + strconv.Itoa(status)}, nil
}

func (k *Sink) post(ctx context.Context, id string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, k.s.Method, k.s.URI, bytes.NewReader(body))
	if err != nil {
		return 0, cairn.Errorf(cairn.EInvalid, "webhook request: %v", err)
	}
	for h, v := range k.s.Headers {
		req.Header.Set(h, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", forward.UserAgent)
	if k.s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+k.s.Token)
	}
	if k.key != nil {
		ts := k.now().Unix()
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
		req.Header.Set("webhook-signature", Sign(k.key, id, ts, body))
	}
	status, _, err := forward.DoHTTP(k.client, req)
	return status, err
}

// Close implements forward.Sink.
func (k *Sink) Close() error {
	k.client.CloseIdleConnections()
	return nil
}

package forward

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-audit/cairn"
)

// Sink delivers batches to one destination. Implementations live in
// forward/<sink>; they must not import the engines or the HTTP API.
type Sink interface {
	// Send delivers the batch's records in order and returns once the
	// destination acknowledged them (whatever acknowledgment the protocol
	// offers; see docs/forwarding.md). On failure it still reports in
	// Acked how many leading records were acknowledged, so the cursor can
	// move past them. Errors carry cairn codes: EUnavailable for what may
	// pass (network, timeouts, 5xx, 429), others for answers that need a
	// change on either side (3xx, 4xx, a refused destination).
	Send(ctx context.Context, b *Batch) (cairn.SinkAnswer, error)
	// Close releases connections.
	Close() error
}

// Batch is consecutive committed events of one context that passed the
// forwarder's filters, in seq order.
type Batch struct {
	Org, Forwarder, Context string
	Format                  string
	Records                 []Record
}

// Record is one event of a batch.
type Record struct {
	Event *cairn.Event
	// Leaf is the committed canonical leaf (the native JSON body).
	Leaf []byte
	// Body is the event rendered in the forwarder's format.
	Body []byte
}

// SinkType describes one kind of sink. cmd/cairn lists the types it
// wires in; the Service knows no sink package.
type SinkType struct {
	Name string
	// Secrets names the settings that are secrets: stored, never shown.
	Secrets []string
	// Formats are the body formats the sink accepts, its default first.
	Formats []string
	// New checks settings and returns a sink. It does no I/O: connections
	// are made by the first Send.
	New func(settings map[string]any, env Env) (Sink, error)
}

// Env is what a sink gets from the service.
type Env struct {
	// Guard dials every connection the sink makes (SSRF guard).
	Guard *Guard
	// Timeout bounds one delivery.
	Timeout time.Duration
	// Now is the clock for timestamps the sink adds (signatures).
	Now    func() time.Time
	Logger *slog.Logger
	// UserAgent identifies Cairn to HTTP receivers.
	UserAgent string
}

// UserAgent is sent by every HTTP sink (Chainloop's forwarder sends the
// same).
const UserAgent = "Cairn-Audit-Logger/1.0"

// DecodeSettings decodes a sink's settings into v (a pointer to the
// sink's settings struct) strictly: unknown settings are EInvalid.
func DecodeSettings(settings map[string]any, v any) error {
	raw, err := json.Marshal(settings)
	if err != nil {
		return cairn.Errorf(cairn.EInvalid, "sink settings: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return cairn.Errorf(cairn.EInvalid, "sink settings: %v", err)
	}
	return nil
}

// TLSSettings are the TLS settings every sink that speaks TLS accepts.
type TLSSettings struct {
	// CAFile is a PEM file of CAs to trust instead of the system's.
	CAFile string `json:"ca_file,omitempty"`
	// CAPEM is the same inline.
	CAPEM string `json:"ca_pem,omitempty"`
	// ServerName overrides the name checked in the server's certificate.
	ServerName string `json:"server_name,omitempty"`
	// InsecureSkipVerify turns certificate checks off (tests only).
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`
}

// Config returns the tls.Config for host.
func (t TLSSettings) Config(host string) (*tls.Config, error) {
	c := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.ServerName != "" {
		c.ServerName = t.ServerName
	}
	pem := []byte(t.CAPEM)
	if t.CAFile != "" {
		b, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, cairn.Errorf(cairn.EInvalid, "tls ca_file: %v", err)
		}
		pem = append(pem, b...)
	}
	if len(pem) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, cairn.Errorf(cairn.EInvalid, "tls: no certificate in the CA PEM")
		}
		c.RootCAs = pool
	}
	return c, nil
}

// HTTPClient returns the client HTTP sinks use: every connection dialled
// through the guard, no proxy from the environment, redirects never
// followed (a 3xx comes back as the response), tlsc for https.
func HTTPClient(env Env, tlsc *tls.Config) *http.Client {
	return &http.Client{
		Timeout: env.Timeout,
		Transport: &http.Transport{
			DialContext:           env.Guard.DialContext,
			TLSClientConfig:       tlsc,
			ForceAttemptHTTP2:     true,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: env.Timeout,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// HTTPError turns a non-2xx response into a delivery error: 3xx is
// EInvalid (Cairn does not follow redirects), 401 and 403 EForbidden,
// 408, 429 and 5xx EUnavailable (with the response's Retry-After), other
// 4xx EInvalid. The message holds the status and a short, sanitised
// excerpt of the body.
func HTTPError(resp *http.Response) error {
	excerpt := Excerpt(resp.Body)
	s := resp.StatusCode
	switch {
	case s >= 300 && s < 400:
		where := ""
		if loc, err := resp.Location(); err == nil {
			where = " to " + loc.Scheme + "://" + loc.Host + loc.Path // no query or user info
		}
		return cairn.Errorf(cairn.EInvalid, "the receiver redirected (HTTP %d%s); Cairn does not follow redirects: configure the final URL", s, where)
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return cairn.Errorf(cairn.EForbidden, "HTTP %d from the receiver (check the credentials)%s", s, excerpt)
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500:
		err := cairn.Errorf(cairn.EUnavailable, "HTTP %d from the receiver%s", s, excerpt)
		if d := parseRetryAfter(resp.Header.Get("Retry-After")); d > 0 {
			return WithRetryAfter(err, d)
		}
		return err
	}
	return cairn.Errorf(cairn.EInvalid, "HTTP %d from the receiver%s", s, excerpt)
}

// Excerpt reads at most 200 bytes of a response body for an error
// message, keeping printable ASCII only.
func Excerpt(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 200))
	s := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return ' '
		}
		return r
	}, string(b))
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	return ": " + s
}

// TransportError classifies an error from a connection attempt or a
// round trip: a refusal by the guard keeps its code (EForbidden); a
// cancelled context is returned as is; anything else is EUnavailable.
func TransportError(what string, err error) error {
	var ce *cairn.Error
	if errors.As(err, &ce) {
		return &cairn.Error{Code: ce.Code, Message: what + ": " + ce.Message, Err: err}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return &cairn.Error{Code: cairn.EUnavailable, Message: fmt.Sprintf("%s: %v", what, err), Err: err}
}

type retryAfter struct {
	error
	d time.Duration
}

func (r retryAfter) Unwrap() error { return r.error }

// WithRetryAfter attaches the receiver's Retry-After to err: the next
// attempt waits at least d (capped by the forwarder's MaxBackoff).
func WithRetryAfter(err error, d time.Duration) error { return retryAfter{err, d} }

// RetryAfter returns the Retry-After attached to err, or 0.
func RetryAfter(err error) time.Duration {
	var r retryAfter
	if errors.As(err, &r) {
		return r.d
	}
	return 0
}

func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

// maxResponse bounds the response body an HTTP sink reads.
const maxResponse = 16 << 20

// DoHTTP sends req and reads the answer. A 2xx answer returns its status
// and body; anything else returns HTTPError's error (3xx included: the
// client does not follow redirects), and a failed round trip
// TransportError's.
func DoHTTP(c *http.Client, req *http.Request) (int, []byte, error) {
	resp, err := c.Do(req)
	if err != nil {
		// *url.Error repeats the whole URL, whose query may hold a
		// credential: name only the host.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, TransportError("request to "+req.URL.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, nil, HTTPError(resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return resp.StatusCode, nil, TransportError("read the answer", err)
	}
	return resp.StatusCode, body, nil
}

// ParseURL checks an http(s) sink URL: a host, no user info (credentials
// belong in the secret settings, which are masked), and, if the host is
// an IP literal, one the guard allows.
func ParseURL(raw string, g *Guard) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, cairn.Errorf(cairn.EInvalid, "sink url must be an http:// or https:// URL with a host")
	}
	if u.User != nil {
		return nil, cairn.Errorf(cairn.EInvalid, "sink url must not carry credentials: use the token or password settings")
	}
	if err := g.CheckHost(u.Hostname()); err != nil {
		return nil, &cairn.Error{Code: cairn.EInvalid, Message: cairn.ErrorMessage(err), Err: err}
	}
	return u, nil
}

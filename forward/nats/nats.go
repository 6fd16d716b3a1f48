// Package nats is the NATS JetStream forwarder sink: every event is
// published to a subject built from a template (default
// "audit.{context}.{action}") and counts as delivered when JetStream
// acknowledged storing it. Each message carries Nats-Msg-Id = the event
// id, so a batch sent again within the stream's duplicate window is
// stored once. Every connection goes through the SSRF guard. It never
// logs messages or credentials.
package nats

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/forward"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Settings are the NATS sink's settings.
type Settings struct {
	// URL is the server, or several comma-separated (nats:// or tls://).
	// Required.
	URL string `json:"url"`
	// Subject is the subject template (see ParseTemplate).
	Subject string `json:"subject,omitempty"`
	// Stream, if set, must be the stream that stores the subjects
	// (a publish captured by another stream fails).
	Stream string `json:"stream,omitempty"`
	// Token, or Username and Password: credentials (Token and Password are
	// secrets).
	Token    string `json:"token,omitempty"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	TLS      TLS    `json:"tls,omitzero"`
}

// TLS turns TLS on and configures it.
type TLS struct {
	Enabled bool `json:"enabled"`
	forward.TLSSettings
}

// Type is the NATS JetStream sink type.
var Type = forward.SinkType{
	Name:    "nats",
	Secrets: []string{"token", "password"},
	Formats: []string{cairn.FormatJSON, cairn.FormatOCSF, cairn.FormatECS, cairn.FormatCEF},
	New:     New,
}

// Sink publishes batches to JetStream.
type Sink struct {
	s     Settings
	host  string // of the first URL: the TLS server name
	tmpl  *Template
	guard *forward.Guard

	mu sync.Mutex
	nc *natsgo.Conn
	js jetstream.JetStream
}

// New checks the settings and returns a Sink; it does no I/O (it
// connects on the first Send).
func New(settings map[string]any, env forward.Env) (forward.Sink, error) {
	var s Settings
	if err := forward.DecodeSettings(settings, &s); err != nil {
		return nil, err
	}
	tmpl, err := ParseTemplate(s.Subject)
	if err != nil {
		return nil, err
	}
	if s.URL == "" {
		return nil, cairn.Errorf(cairn.EInvalid, "nats needs a url")
	}
	host := ""
	for _, raw := range strings.Split(s.URL, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Hostname() == "" {
			return nil, cairn.Errorf(cairn.EInvalid, "nats url %q must be nats://host:port or tls://host:port", raw)
		}
		if u.User != nil {
			return nil, cairn.Errorf(cairn.EInvalid, "nats url must not carry credentials: use token or username and password")
		}
		if err := env.Guard.CheckHost(u.Hostname()); err != nil {
			return nil, &cairn.Error{Code: cairn.EInvalid, Message: cairn.ErrorMessage(err), Err: err}
		}
		if host == "" {
			host = u.Hostname()
		}
	}
	if s.Token != "" && s.Username != "" {
		return nil, cairn.Errorf(cairn.EInvalid, "nats takes a token or a username and password, not both")
	}
	return &Sink{s: s, host: host, tmpl: tmpl, guard: env.Guard}, nil
}

// dialer dials the NATS servers through the guard.
type dialer struct{ g *forward.Guard }

func (d dialer) Dial(network, address string) (net.Conn, error) { return d.g.Dial(network, address) }

func (k *Sink) connect() (jetstream.JetStream, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.nc != nil && !k.nc.IsClosed() {
		return k.js, nil
	}
	opts := []natsgo.Option{natsgo.Name("cairn-forwarder"), natsgo.SetCustomDialer(dialer{k.guard}), natsgo.MaxReconnects(-1)}
	switch {
	case k.s.Token != "":
		opts = append(opts, natsgo.Token(k.s.Token))
	case k.s.Username != "":
		opts = append(opts, natsgo.UserInfo(k.s.Username, k.s.Password))
	}
	if k.s.TLS.Enabled {
		cfg, err := k.s.TLS.Config(k.host)
		if err != nil {
			return nil, err
		}
		opts = append(opts, natsgo.Secure(cfg))
	}
	nc, err := natsgo.Connect(k.s.URL, opts...)
	if err != nil {
		return nil, natsError("nats connect", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, natsError("jetstream", err)
	}
	k.nc, k.js = nc, js
	return js, nil
}

// Send implements forward.Sink: it publishes the batch pipelined and
// waits for every acknowledgment; the leading acknowledged messages count
// even when a later one failed.
func (k *Sink) Send(ctx context.Context, b *forward.Batch) (cairn.SinkAnswer, error) {
	js, err := k.connect()
	if err != nil {
		return cairn.SinkAnswer{}, err
	}
	var popts []jetstream.PublishOpt
	if k.s.Stream != "" {
		popts = append(popts, jetstream.WithExpectStream(k.s.Stream))
	}
	futs := make([]jetstream.PubAckFuture, 0, len(b.Records))
	for _, r := range b.Records {
		e := r.Event
		m := natsgo.NewMsg(k.tmpl.Subject(e))
		m.Data = r.Body
		m.Header.Set(jetstream.MsgIDHeader, e.ID)
		m.Header.Set("Cairn-Org", e.Org)
		m.Header.Set("Cairn-Context", e.Context)
		m.Header.Set("Cairn-Seq", strconv.FormatInt(e.Seq, 10))
		f, err := js.PublishMsgAsync(m, popts...)
		if err != nil {
			break // the acknowledged prefix still counts
		}
		futs = append(futs, f)
	}
	var last *jetstream.PubAck
	for i, f := range futs {
		select {
		case ack := <-f.Ok():
			last = ack
		case err := <-f.Err():
			return cairn.SinkAnswer{Acked: i}, natsError("jetstream publish", err)
		case <-ctx.Done():
			return cairn.SinkAnswer{Acked: i}, natsError("jetstream publish", ctx.Err())
		}
	}
	if len(futs) < len(b.Records) {
		return cairn.SinkAnswer{Acked: len(futs)}, cairn.Errorf(cairn.EUnavailable, "jetstream: publishing stopped after %d of %d messages", len(futs), len(b.Records))
	}
	return cairn.SinkAnswer{Acked: len(futs), Detail: fmt.Sprintf("stream %s stored up to seq %d", last.Stream, last.Sequence)}, nil
}

func natsError(what string, err error) error {
	var ce *cairn.Error
	switch {
	case errors.As(err, &ce):
		return &cairn.Error{Code: ce.Code, Message: what + ": " + ce.Message, Err: err}
	case errors.Is(err, natsgo.ErrAuthorization), errors.Is(err, natsgo.ErrAuthExpired), errors.Is(err, natsgo.ErrAuthRevoked):
		return &cairn.Error{Code: cairn.EForbidden, Message: what + ": the server refused the credentials", Err: err}
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, natsgo.ErrNoResponders):
		return &cairn.Error{Code: cairn.EInvalid, Message: what + ": no JetStream stream stores this subject", Err: err}
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.Code >= 400 && apiErr.Code < 500 && apiErr.Code != 408 {
		return &cairn.Error{Code: cairn.EInvalid, Message: what + ": " + apiErr.Description, Err: err}
	}
	return &cairn.Error{Code: cairn.EUnavailable, Message: what + ": " + err.Error(), Err: err}
}

// Close implements forward.Sink.
func (k *Sink) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.nc != nil {
		k.nc.Close()
		k.nc = nil
	}
	return nil
}

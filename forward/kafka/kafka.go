// Package kafka is the Kafka forwarder sink, on franz-go: one produce of
// the whole batch with the idempotent producer and acks from all in-sync
// replicas. Each record's key is "<context>/<target type>/<target id>"
// (or the context alone for an event without a target), so the events of
// one object land in one partition, in order. SASL/PLAIN and TLS are
// supported; every connection goes through the SSRF guard. It never logs
// records or the password.
package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/forward"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// Settings are the Kafka sink's settings.
type Settings struct {
	// Brokers are the seed brokers, host:port. Required.
	Brokers []string `json:"brokers"`
	// Topic receives the events. Required.
	Topic    string `json:"topic"`
	ClientID string `json:"client_id,omitempty"`
	// SASLMechanism is "" (none) or "PLAIN"; SASLPassword is a secret.
	SASLMechanism string `json:"sasl_mechanism,omitempty"`
	SASLUsername  string `json:"sasl_username,omitempty"`
	SASLPassword  string `json:"sasl_password,omitempty"`
	TLS           TLS    `json:"tls,omitzero"`
}

// TLS turns TLS on and configures it.
type TLS struct {
	Enabled bool `json:"enabled"`
	forward.TLSSettings
}

// Type is the Kafka sink type.
var Type = forward.SinkType{
	Name:    "kafka",
	Secrets: []string{"sasl_password"},
	Formats: []string{cairn.FormatJSON, cairn.FormatOCSF, cairn.FormatECS, cairn.FormatCEF},
	New:     New,
}

// Sink produces batches to one topic.
type Sink struct {
	s     Settings
	guard *forward.Guard

	mu      sync.Mutex
	client  *kgo.Client
	dialErr error // the last failed connection attempt, if any
}

// New checks the settings and returns a Sink; it does no I/O (the client
// is created by the first Send).
func New(settings map[string]any, env forward.Env) (forward.Sink, error) {
	var s Settings
	if err := forward.DecodeSettings(settings, &s); err != nil {
		return nil, err
	}
	if len(s.Brokers) == 0 || s.Topic == "" {
		return nil, cairn.Errorf(cairn.EInvalid, "kafka needs brokers and a topic")
	}
	for _, b := range s.Brokers {
		host, _, err := net.SplitHostPort(b)
		if err != nil || host == "" {
			return nil, cairn.Errorf(cairn.EInvalid, "kafka broker %q must be host:port", b)
		}
		if err := env.Guard.CheckHost(host); err != nil {
			return nil, &cairn.Error{Code: cairn.EInvalid, Message: cairn.ErrorMessage(err), Err: err}
		}
	}
	switch s.SASLMechanism {
	case "":
	case "PLAIN":
		if s.SASLUsername == "" {
			return nil, cairn.Errorf(cairn.EInvalid, "kafka SASL/PLAIN needs sasl_username and sasl_password")
		}
	default:
		return nil, cairn.Errorf(cairn.EInvalid, `kafka sasl_mechanism must be "" or "PLAIN"`)
	}
	if s.TLS.Enabled {
		if _, err := s.TLS.Config(""); err != nil {
			return nil, err
		}
	}
	return &Sink{s: s, guard: env.Guard}, nil
}

// dial connects to a broker through the guard (and TLS), remembering a
// failure: franz-go retries connections until the produce times out, and
// the cause is what the forwarder's status should show.
func (k *Sink) dial(ctx context.Context, network, host string) (net.Conn, error) {
	c, err := k.dialOnce(ctx, network, host)
	k.mu.Lock()
	k.dialErr = err
	k.mu.Unlock()
	return c, err
}

func (k *Sink) dialOnce(ctx context.Context, network, host string) (net.Conn, error) {
	c, err := k.guard.DialContext(ctx, network, host)
	if err != nil || !k.s.TLS.Enabled {
		return c, err
	}
	name, _, _ := net.SplitHostPort(host)
	cfg, err := k.s.TLS.Config(name)
	if err != nil {
		c.Close()
		return nil, err
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

func (k *Sink) clientOnce() (*kgo.Client, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.client != nil {
		return k.client, nil
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(k.s.Brokers...),
		kgo.Dialer(k.dial),
		kgo.DefaultProduceTopic(k.s.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
	}
	if k.s.ClientID != "" {
		opts = append(opts, kgo.ClientID(k.s.ClientID))
	}
	if k.s.SASLMechanism == "PLAIN" {
		opts = append(opts, kgo.SASL(plain.Auth{User: k.s.SASLUsername, Pass: k.s.SASLPassword}.AsMechanism()))
	}
	c, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, cairn.Errorf(cairn.EInvalid, "kafka client: %v", err)
	}
	k.client = c
	return c, nil
}

// Key returns an event's record key: "<context>/<target type>/<target
// id>", or the context alone without a target.
func Key(r forward.Record) []byte {
	e := r.Event
	if e.Target == nil || (e.Target.Type == "" && e.Target.ID == "") {
		return []byte(e.Context)
	}
	return []byte(e.Context + "/" + e.Target.Type + "/" + e.Target.ID)
}

// Send implements forward.Sink.
func (k *Sink) Send(ctx context.Context, b *forward.Batch) (cairn.SinkAnswer, error) {
	c, err := k.clientOnce()
	if err != nil {
		return cairn.SinkAnswer{}, err
	}
	recs := make([]*kgo.Record, len(b.Records))
	for i, r := range b.Records {
		e := r.Event
		recs[i] = &kgo.Record{Key: Key(r), Value: r.Body, Headers: []kgo.RecordHeader{
			{Key: "cairn-org", Value: []byte(e.Org)}, {Key: "cairn-context", Value: []byte(e.Context)},
			{Key: "cairn-seq", Value: []byte(strconv.FormatInt(e.Seq, 10))}, {Key: "cairn-id", Value: []byte(e.ID)},
		}}
	}
	results := c.ProduceSync(ctx, recs...)
	for i, res := range results {
		if res.Err != nil {
			err := res.Err
			k.mu.Lock()
			if dialErr := k.dialErr; dialErr != nil && ctx.Err() != nil {
				err = forward.TransportError("kafka broker", dialErr)
			}
			k.mu.Unlock()
			return cairn.SinkAnswer{Acked: i}, produceError(err)
		}
	}
	last := results[len(results)-1].Record
	return cairn.SinkAnswer{Acked: len(recs), Detail: fmt.Sprintf("%d records acked; last at partition %d offset %d", len(recs), last.Partition, last.Offset)}, nil
}

func produceError(err error) error {
	var ce *cairn.Error
	switch {
	case errors.As(err, &ce):
		return err // the guard refused a broker
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.TopicAuthorizationFailed),
		errors.Is(err, kerr.ClusterAuthorizationFailed):
		return &cairn.Error{Code: cairn.EForbidden, Message: "kafka refused the credentials: " + err.Error(), Err: err}
	case errors.Is(err, kerr.MessageTooLarge):
		return &cairn.Error{Code: cairn.EInvalid, Message: "kafka: " + err.Error(), Err: err}
	}
	return &cairn.Error{Code: cairn.EUnavailable, Message: "kafka: " + err.Error(), Err: err}
}

// Close implements forward.Sink.
func (k *Sink) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.client != nil {
		k.client.Close()
		k.client = nil
	}
	return nil
}

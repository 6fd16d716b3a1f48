// Package syslog is the RFC 5424 syslog forwarder sink over TCP (RFC 6587)
// or TLS (RFC 5425), with octet-counting framing ("<length> <message>").
// The message body is the event in native JSON or CEF.
//
// Syslog has no application-level acknowledgment: a batch counts as
// delivered when its bytes were written to the connection. Before each
// batch the sink checks that the receiver has not closed the connection
// (and reconnects if it has), so a receiver restart between batches does
// not lose one; a receiver that dies with unread bytes in its buffers can
// still lose them (see docs/forwarding.md). It never logs messages.
package syslog

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/forward"
)

// Settings are the syslog sink's settings.
type Settings struct {
	// Address is the receiver, host:port. Required.
	Address string `json:"address"`
	// Transport is "tcp" (default) or "tls".
	Transport string              `json:"transport,omitempty"`
	TLS       forward.TLSSettings `json:"tls,omitzero"`
	// Facility is the syslog facility, 0-23 (default 13, log audit).
	Facility *int `json:"facility,omitempty"`
	// Hostname and AppName fill the header (defaults: this host's name,
	// "cairn").
	Hostname string `json:"hostname,omitempty"`
	AppName  string `json:"app_name,omitempty"`
	// SDID, if set (e.g. "cairn@32473" with your private enterprise
	// number), adds structured data [SDID id="…" context="…" seq="…"].
	SDID string `json:"sd_id,omitempty"`
}

// Type is the syslog sink type.
var Type = forward.SinkType{
	Name:    "syslog",
	Formats: []string{cairn.FormatJSON, cairn.FormatCEF},
	New:     New,
}

// Sink writes batches to one syslog connection.
type Sink struct {
	s     Settings
	host  string
	fac   int
	tlsc  *tls.Config
	guard *forward.Guard

	mu   sync.Mutex
	conn net.Conn
}

// New checks the settings and returns a Sink; it does no I/O.
func New(settings map[string]any, env forward.Env) (forward.Sink, error) {
	var s Settings
	if err := forward.DecodeSettings(settings, &s); err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(s.Address)
	if err != nil || host == "" || port == "" {
		return nil, cairn.Errorf(cairn.EInvalid, "syslog address must be host:port")
	}
	if err := env.Guard.CheckHost(host); err != nil {
		return nil, &cairn.Error{Code: cairn.EInvalid, Message: cairn.ErrorMessage(err), Err: err}
	}
	k := &Sink{s: s, guard: env.Guard, fac: 13}
	if s.Facility != nil {
		if *s.Facility < 0 || *s.Facility > 23 {
			return nil, cairn.Errorf(cairn.EInvalid, "syslog facility must be 0-23")
		}
		k.fac = *s.Facility
	}
	switch s.Transport {
	case "", "tcp":
	case "tls":
		if k.tlsc, err = s.TLS.Config(host); err != nil {
			return nil, err
		}
	default:
		return nil, cairn.Errorf(cairn.EInvalid, `syslog transport must be "tcp" or "tls"`)
	}
	k.host = s.Hostname
	if k.host == "" {
		k.host, _ = os.Hostname()
	}
	k.host = headerField(k.host, 255)
	if s.AppName == "" {
		s.AppName = "cairn"
	}
	k.s.AppName = headerField(s.AppName, 48)
	if s.SDID != "" && (headerField(s.SDID, 32) != s.SDID || strings.ContainsAny(s.SDID, `= ]"`)) {
		return nil, cairn.Errorf(cairn.EInvalid, "syslog sd_id must be 1-32 printable characters without '=', ' ', ']' or '\"'")
	}
	return k, nil
}

// headerField makes s a valid RFC 5424 header field: printable US-ASCII
// (33-126), at most n characters, "-" when empty.
func headerField(s string, n int) string {
	b := make([]byte, 0, min(len(s), n))
	for i := 0; i < len(s) && len(b) < n; i++ {
		if c := s[i]; c >= 33 && c <= 126 {
			b = append(b, c)
		} else {
			b = append(b, '_')
		}
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}

// sdEscaper escapes an SD-PARAM value: '"', '\' and ']'.
var sdEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`)

// Message returns the RFC 5424 message of one record (without framing):
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID [SD] MSG
//
// PRI is facility*8 + severity (6 informational; 4 warning for a failure
// or a failed login); TIMESTAMP the event time in UTC with microseconds;
// MSGID the action (printable ASCII, at most 32 characters).
func (k *Sink) Message(r forward.Record) []byte {
	e := r.Event
	sev := 6
	if e.Outcome == cairn.OutcomeFailure || e.Kind == cairn.KindLoginFailed {
		sev = 4
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "<%d>1 %s %s %s - %s ", k.fac*8+sev, e.EventTime.UTC().Format("2006-01-02T15:04:05.000000Z"),
		k.host, k.s.AppName, headerField(e.Action, 32))
	if k.s.SDID != "" {
		fmt.Fprintf(&b, `[%s id="%s" context="%s" seq="%d"] `, k.s.SDID, sdEscaper.Replace(e.ID), sdEscaper.Replace(e.Context), e.Seq)
	} else {
		b.WriteString("- ")
	}
	b.Write(r.Body)
	return b.Bytes()
}

// Frame returns the octet-counted frames of a batch.
func (k *Sink) Frame(b *forward.Batch) []byte {
	var buf bytes.Buffer
	for _, r := range b.Records {
		m := k.Message(r)
		buf.WriteString(strconv.Itoa(len(m)))
		buf.WriteByte(' ')
		buf.Write(m)
	}
	return buf.Bytes()
}

// Send implements forward.Sink.
func (k *Sink) Send(ctx context.Context, b *forward.Batch) (cairn.SinkAnswer, error) {
	data := k.Frame(b)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.conn != nil && closedByPeer(k.conn) {
		k.conn.Close()
		k.conn = nil
	}
	if k.conn == nil {
		c, err := k.dial(ctx)
		if err != nil {
			return cairn.SinkAnswer{}, err
		}
		k.conn = c
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	k.conn.SetWriteDeadline(deadline)
	if _, err := k.conn.Write(data); err != nil {
		k.conn.Close()
		k.conn = nil
		return cairn.SinkAnswer{}, forward.TransportError("syslog write", err)
	}
	return cairn.SinkAnswer{Acked: len(b.Records), Detail: fmt.Sprintf("wrote %d messages (%d bytes)", len(b.Records), len(data))}, nil
}

func (k *Sink) dial(ctx context.Context) (net.Conn, error) {
	c, err := k.guard.DialContext(ctx, "tcp", k.s.Address)
	if err != nil {
		return nil, forward.TransportError("syslog connect", err)
	}
	if k.tlsc == nil {
		return c, nil
	}
	tc := tls.Client(c, k.tlsc)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, forward.TransportError("syslog TLS handshake", err)
	}
	return tc, nil
}

// closedByPeer reports whether the receiver closed the connection (a
// syslog receiver never writes, so anything readable is EOF or an error).
func closedByPeer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(time.Millisecond))
	defer c.SetReadDeadline(time.Time{})
	var one [1]byte
	_, err := c.Read(one[:])
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// Close implements forward.Sink.
func (k *Sink) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.conn != nil {
		err := k.conn.Close()
		k.conn = nil
		return err
	}
	return nil
}

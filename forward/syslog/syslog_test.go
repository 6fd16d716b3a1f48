package syslog_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/forward"
	"github.com/cairn-audit/cairn/forward/forwardtest"
	"github.com/cairn-audit/cairn/forward/syslog"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestMessageGolden(t *testing.T) {
	for _, format := range []string{cairn.FormatJSON, cairn.FormatCEF} {
		t.Run(format, func(t *testing.T) {
			sink, err := syslog.New(map[string]any{"address": "127.0.0.1:6514", "hostname": "cairn host", "sd_id": "cairn@32473", "facility": 10},
				forward.Env{Guard: forwardtest.Loopback})
			if err != nil {
				t.Fatal(err)
			}
			got := sink.(*syslog.Sink).Frame(forwardtest.Batch(t, format))
			path := filepath.Join("testdata", "frames."+format+".golden")
			if *update {
				os.WriteFile(path, got, 0o644)
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Fatalf("frames differ from %s:\n got %s\nwant %s", path, got, want)
			}
		})
	}
}

// listener is a syslog receiver: it reads octet-counted frames, checks
// each RFC 5424 header, and records the events. closeAfter, if set,
// makes it drop each connection after that many messages.
type listener struct {
	t          *testing.T
	ln         net.Listener
	closeAfter int
	closed     chan struct{} // receives after each connection closeAfter ended

	mu  sync.Mutex
	got []forwardtest.Delivered
	bad string
}

func listen(t *testing.T, tlsc *tls.Config) *listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tlsc != nil {
		ln = tls.NewListener(ln, tlsc)
	}
	l := &listener{t: t, ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go l.serve(c)
		}
	}()
	return l
}

func (l *listener) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	n := 0
	for {
		lenStr, err := r.ReadString(' ')
		if err != nil {
			return
		}
		size, err := strconv.Atoi(strings.TrimSuffix(lenStr, " "))
		if err != nil {
			l.fail("bad frame length " + lenStr)
			return
		}
		msg := make([]byte, size)
		if _, err := io.ReadFull(r, msg); err != nil {
			return
		}
		l.record(string(msg))
		n++
		if l.closeAfter > 0 && n == l.closeAfter {
			c.Close()
			if l.closed != nil {
				l.closed <- struct{}{}
			}
			return
		}
	}
}

func (l *listener) fail(s string) {
	l.mu.Lock()
	if l.bad == "" {
		l.bad = s
	}
	l.mu.Unlock()
}

// record checks "<PRI>1 TS HOST APP - MSGID - MSG" and decodes MSG.
func (l *listener) record(msg string) {
	parts := strings.SplitN(msg, " ", 8)
	if len(parts) != 8 || !strings.HasPrefix(parts[0], "<110>1") && !strings.HasPrefix(parts[0], "<108>1") || parts[4] != "-" || parts[6] != "-" {
		l.fail("bad header: " + msg)
		return
	}
	if _, err := time.Parse(time.RFC3339Nano, parts[1]); err != nil {
		l.fail("bad timestamp " + parts[1])
	}
	var e struct {
		ID      string `json:"id"`
		Context string `json:"context"`
		Seq     int64  `json:"seq"`
	}
	if err := json.Unmarshal([]byte(parts[7]), &e); err != nil {
		l.fail("MSG is not the event: " + parts[7])
		return
	}
	l.mu.Lock()
	l.got = append(l.got, forwardtest.Delivered{Context: e.Context, Seq: e.Seq, ID: e.ID})
	l.mu.Unlock()
}

func (l *listener) delivered() []forwardtest.Delivered {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]forwardtest.Delivered(nil), l.got...)
}

func deliver(t *testing.T, l *listener, settings map[string]any) {
	h := forwardtest.New(t, []forward.SinkType{syslog.Type}, nil)
	h.Append("app", 45, nil)
	settings["address"] = l.ln.Addr().String()
	settings["facility"] = 13
	h.Create(forwardtest.Forwarder("syslog", "syslog", settings, "app"))
	h.Append("app", 10, nil)
	h.CaughtUp("syslog")
	// Written is not yet read: wait for the receiver to read it all.
	forwardtest.WaitFor(t, "the receiver to read 55 messages", func() bool { return len(l.delivered()) >= 55 })
	forwardtest.CheckStream(t, l.delivered(), map[string]int64{"app": 55})
	if l.bad != "" {
		t.Fatal(l.bad)
	}
}

func TestTCP(t *testing.T) {
	deliver(t, listen(t, nil), map[string]any{})
}

// A receiver that closed the connection while idle (a restart, an idle
// timeout) loses nothing: the sink sees the closed connection before the
// next batch and reconnects.
func TestTCPReceiverClosesIdleConnection(t *testing.T) {
	l := listen(t, nil)
	l.closeAfter = 10
	l.closed = make(chan struct{}, 10)
	h := forwardtest.New(t, []forward.SinkType{syslog.Type}, nil)
	h.Append("app", 10, nil)
	h.Create(forwardtest.Forwarder("syslog", "syslog", map[string]any{"address": l.ln.Addr().String(), "facility": 13}, "app"))
	h.CaughtUp("syslog")
	<-l.closed // the receiver read 10 messages and dropped the connection
	h.Append("app", 10, nil)
	h.CaughtUp("syslog")
	forwardtest.WaitFor(t, "the receiver to read 20 messages", func() bool { return len(l.delivered()) >= 20 })
	forwardtest.CheckStream(t, l.delivered(), map[string]int64{"app": 20})
	if l.bad != "" {
		t.Fatal(l.bad)
	}
}

func TestTLS(t *testing.T) {
	certPEM, keyPEM := selfSigned(t)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	l := listen(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	deliver(t, l, map[string]any{"transport": "tls", "tls": map[string]any{"ca_pem": string(certPEM), "server_name": "syslog.test"}})
}

// A certificate the sink does not trust fails the delivery; nothing is
// sent.
func TestTLSUntrusted(t *testing.T) {
	certPEM, keyPEM := selfSigned(t)
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	l := listen(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	sink, err := syslog.New(map[string]any{"address": l.ln.Addr().String(), "transport": "tls"}, forward.Env{Guard: forwardtest.Loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	_, err = sink.Send(t.Context(), forwardtest.Batch(t, cairn.FormatJSON))
	if cairn.ErrorCode(err) != cairn.EUnavailable {
		t.Fatalf("untrusted certificate: %v, want unavailable", err)
	}
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "syslog.test"},
		DNSNames: []string{"syslog.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func TestSettings(t *testing.T) {
	env := forward.Env{Guard: &forward.Guard{}}
	for name, s := range map[string]map[string]any{
		"no port":     {"address": "logs.example"},
		"transport":   {"address": "logs.example:514", "transport": "udp"},
		"facility":    {"address": "logs.example:514", "facility": 24},
		"sd id":       {"address": "logs.example:514", "sd_id": "a b"},
		"private ip":  {"address": "10.0.0.1:514"},
		"unknown key": {"address": "logs.example:514", "port": 514},
	} {
		if _, err := syslog.New(s, env); cairn.ErrorCode(err) != cairn.EInvalid {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestConn checks the ingest connection against a real HTTP server: a body
// and its headers arrive intact, keep-alive reuses the connection, and a
// connection the server closes, politely or not, is dialled again.
func TestConn(t *testing.T) {
	var n atomic.Int64
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer tok" || r.ContentLength != int64(len(b)) {
			t.Errorf("request %d: headers %v, %d bytes", i, r.Header, len(b))
		}
		switch i {
		case 3: // close after this response
			w.Header().Set("Connection", "close")
		case 5: // drop the connection without a response
			c, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			c.Close()
			return
		}
		w.WriteHeader(http.StatusCreated)
		w.Write(append([]byte("echo:"), b...))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	c, err := newConn(srv.URL, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	a := &api{token: "tok"}
	var buf bytes.Buffer
	failed := 0
	for i := 1; i <= 7; i++ {
		body := &body{buf: []byte(strings.Repeat("x", 100*i))}
		req, err := a.postBody(context.Background(), srv.URL+"/e", body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.do(context.Background(), req, &buf)
		if i == 5 {
			if err == nil {
				t.Errorf("request 5: dropped connection gave HTTP %d", resp.StatusCode)
			}
			failed++
			continue
		}
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if resp.StatusCode != http.StatusCreated || buf.String() != "echo:"+string(body.buf) {
			t.Errorf("request %d: HTTP %d, body %.20q", i, resp.StatusCode, buf.String())
		}
	}
	// One connection for requests 1-3, one for 4-5, one for 6-7.
	if got := conns.Load(); got != 3 {
		t.Errorf("%d connections, want 3", got)
	}
}

// TestConnCancel checks that cancelling the context ends a request the
// server does not answer.
func TestConnCancel(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)

	c, err := newConn(srv.URL, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	start := time.Now()
	var buf bytes.Buffer
	if _, err := c.do(ctx, req, &buf); err != context.DeadlineExceeded {
		t.Errorf("err = %v, want the context's", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("cancel took %s", d)
	}
}

func TestNewConnScheme(t *testing.T) {
	for base, want := range map[string]string{
		"http://127.0.0.1:9": "127.0.0.1:9", "http://localhost": "localhost:80",
		"https://cairn.example": "cairn.example:443", "https://[::1]:8443": "[::1]:8443",
	} {
		c, err := newConn(base, time.Second)
		if err != nil || c.host != want || (c.tls != nil) != strings.HasPrefix(base, "https") {
			t.Errorf("newConn(%q) = %+v, %v; want host %s", base, c, err, want)
		}
	}
	if _, err := newConn("ftp://x", time.Second); err == nil {
		t.Error("ftp: no error")
	}
}

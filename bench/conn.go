package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// conn is one ingest client's HTTP/1.1 connection: the request is written
// with one write and its response read back in the caller's goroutine,
// with net/http's own request writer and response parser.
//
// Why not http.Transport: it hands every request to a writer goroutine and
// a reader goroutine of the connection and back, through channels and
// selects. With 64 single-event clients the load generator needed 59-62 µs
// of CPU per request through it and 37-45 µs this way, CPU taken from the
// two cores the server under test runs on (docs/performance.md).
type conn struct {
	host    string // host:port to dial
	tls     *tls.Config
	timeout time.Duration // per request

	nc   net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	stop func() bool // ends the context watch of nc
}

// newConn returns an unconnected conn to the server of base, a URL.
func newConn(base string, timeout time.Duration) (*conn, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	c := &conn{host: u.Host, timeout: timeout}
	switch u.Scheme {
	case "http":
		if u.Port() == "" {
			c.host = net.JoinHostPort(u.Hostname(), "80")
		}
	case "https":
		c.tls = &tls.Config{ServerName: u.Hostname()}
		if u.Port() == "" {
			c.host = net.JoinHostPort(u.Hostname(), "443")
		}
	default:
		return nil, fmt.Errorf("server %q: scheme must be http or https", base)
	}
	return c, nil
}

// do sends req and reads the whole response body into buf. Any error
// closes the connection; the next request dials again.
func (c *conn) do(ctx context.Context, req *http.Request, buf *bytes.Buffer) (*http.Response, error) {
	if c.nc == nil {
		if err := c.dial(ctx); err != nil {
			return nil, err
		}
	}
	resp, err := c.roundTrip(req, buf)
	if err != nil {
		c.close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if resp.Close {
		c.close()
	}
	return resp, nil
}

func (c *conn) roundTrip(req *http.Request, buf *bytes.Buffer) (*http.Response, error) {
	if err := c.nc.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return nil, err
	}
	if err := req.Write(c.bw); err != nil {
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		return nil, err
	}
	if err := readBody(resp, buf); err != nil {
		return nil, err
	}
	return resp, nil
}

func (c *conn) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	var nc net.Conn
	var err error
	if c.tls != nil {
		nc, err = (&tls.Dialer{NetDialer: &d, Config: c.tls}).DialContext(ctx, "tcp", c.host)
	} else {
		nc, err = d.DialContext(ctx, "tcp", c.host)
	}
	if err != nil {
		return err
	}
	c.nc = nc
	c.br = bufio.NewReaderSize(nc, 16<<10)
	c.bw = bufio.NewWriterSize(nc, 64<<10)
	// Cancelling ctx ends a request in flight at once.
	c.stop = context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	return nil
}

func (c *conn) close() {
	if c.nc == nil {
		return
	}
	c.stop()
	c.nc.Close()
	c.nc, c.br, c.bw, c.stop = nil, nil, nil, nil
}

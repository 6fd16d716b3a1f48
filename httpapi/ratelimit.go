package httpapi

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// clientIP is the address a request comes from: the TCP peer, or, when
// the peer is a trusted proxy, the right-most address in X-Forwarded-For
// (or, without it, in the RFC 7239 Forwarded header's for= parameters)
// that is not itself a trusted proxy. These headers from anyone else are
// ignored: they are the client's to forge.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if !s.trusted(peer) {
		return peer.String()
	}
	hops := forwardedHops(r.Header)
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := parseHop(hops[i])
		if err != nil {
			break // a garbled hop: stop at the last address we could trust
		}
		client = a
		if !s.trusted(client) {
			break
		}
	}
	return client.String()
}

// forwardedHops lists the addresses proxies added, nearest last:
// X-Forwarded-For if present, else the for= of each Forwarded element.
func forwardedHops(h http.Header) []string {
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		return strings.Split(strings.Join(xff, ","), ",")
	}
	var hops []string
	for _, elem := range strings.Split(strings.Join(h.Values("Forwarded"), ","), ",") {
		var hop string
		for _, pair := range strings.Split(elem, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if ok && strings.EqualFold(k, "for") {
				hop = strings.Trim(v, `"`)
			}
		}
		if strings.TrimSpace(elem) != "" {
			hops = append(hops, hop) // an element without for= stops the walk
		}
	}
	return hops
}

// parseHop parses one hop: an address, "[v6]", or either with a port.
func parseHop(v string) (netip.Addr, error) {
	v = strings.TrimSpace(v)
	if ap, err := netip.ParseAddrPort(v); err == nil {
		return ap.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(v, "["), "]"))
	return a.Unmap(), err
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// limiter counts failed authentications per source address in a token
// bucket: Burst failures at once, refilled over Window. An address with an
// empty bucket gets 429 for every authenticated request, valid or not, so
// that guessing cannot go on behind the limit.
type limiter struct {
	burst  float64
	refill float64 // tokens per second
	mu     sync.Mutex
	m      map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxTracked bounds the addresses the limiter remembers; full buckets are
// forgotten first.
const maxTracked = 100000

func newLimiter(burst int, window time.Duration) *limiter {
	return &limiter{burst: float64(burst), refill: float64(burst) / window.Seconds(), m: map[string]*bucket{}}
}

func (l *limiter) level(b *bucket, now time.Time) float64 {
	return math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.refill)
}

// blocked returns how long ip must wait, or 0.
func (l *limiter) blocked(ip string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.m[ip]
	if !ok {
		return 0
	}
	t := l.level(b, now)
	if t >= 1 {
		return 0
	}
	return time.Duration((1 - t) / l.refill * float64(time.Second))
}

// fail takes one token from ip's bucket.
func (l *limiter) fail(ip string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.m[ip]
	if !ok {
		if len(l.m) >= maxTracked {
			for k, v := range l.m {
				if l.level(v, now) >= l.burst {
					delete(l.m, k)
				}
			}
		}
		if len(l.m) >= maxTracked {
			return // under a flood of addresses: fail open rather than grow without bound
		}
		b = &bucket{tokens: l.burst, last: now}
		l.m[ip] = b
	}
	b.tokens = l.level(b, now) - 1
	b.last = now
}

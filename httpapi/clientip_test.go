package httpapi

import (
	"net/http"
	"net/netip"
	"testing"
)

// TestClientIP: forwarding headers count only when the peer is a trusted
// proxy, and then the right-most untrusted hop is the client.
func TestClientIP(t *testing.T) {
	s := &Server{cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
	for _, tc := range []struct {
		name, peer string
		h          http.Header
		want       string
	}{
		{"no proxy", "203.0.113.9:5000", nil, "203.0.113.9"},
		{"forged XFF from an untrusted peer", "203.0.113.9:5000", http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "203.0.113.9"},
		{"forged Forwarded from an untrusted peer", "203.0.113.9:5000", http.Header{"Forwarded": {"for=198.51.100.1"}}, "203.0.113.9"},
		{"XFF via a trusted proxy", "10.0.0.1:5000", http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1"},
		{"XFF: the client's own forged hop is ignored", "10.0.0.1:5000", http.Header{"X-Forwarded-For": {"1.2.3.4, 198.51.100.1"}}, "198.51.100.1"},
		{"XFF through two trusted proxies", "10.0.0.1:5000", http.Header{"X-Forwarded-For": {"198.51.100.1, 10.0.0.2"}}, "198.51.100.1"},
		{"Forwarded via a trusted proxy", "10.0.0.1:5000", http.Header{"Forwarded": {`for=192.0.2.60;proto=https;by=10.0.0.1`}}, "192.0.2.60"},
		{"Forwarded IPv6 with a port", "10.0.0.1:5000", http.Header{"Forwarded": {`for="[2001:db8:cafe::17]:4711"`}}, "2001:db8:cafe::17"},
		{"Forwarded: forged first element ignored", "10.0.0.1:5000", http.Header{"Forwarded": {`for=1.2.3.4, for=192.0.2.60`}}, "192.0.2.60"},
		{"Forwarded hop without for=", "10.0.0.1:5000", http.Header{"Forwarded": {`proto=https`}}, "10.0.0.1"},
		{"garbled hop", "10.0.0.1:5000", http.Header{"X-Forwarded-For": {"nonsense"}}, "10.0.0.1"},
		{"unix socket peer", "@", nil, "@"},
	} {
		r := &http.Request{RemoteAddr: tc.peer, Header: tc.h}
		if got := s.clientIP(r); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

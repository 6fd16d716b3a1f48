package forward

import (
	"context"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/cairn-audit/cairn"
)

// Guard is the SSRF guard: every connection a sink makes is dialled
// through it, and a connection to a loopback, private, link-local (cloud
// metadata), carrier-grade NAT, multicast or otherwise non-public address
// is refused unless an Allow prefix contains it.
//
// The check runs at dial time on the address actually dialled, after DNS
// resolution (net.Dialer.Control), so a name that resolves to a public
// address when the forwarder is saved and to a private one later (DNS
// rebinding) is still refused. IPv4-mapped IPv6 addresses are checked as
// IPv4, and so are the IPv4 addresses inside NAT64 (64:ff9b::/96) and
// 6to4 (2002::/16) addresses.
type Guard struct {
	// Allow lists the prefixes that are reachable even though refused by
	// default (e.g. 10.0.0.0/8 for an internal SIEM, 127.0.0.0/8 in tests).
	Allow []netip.Prefix
	// DialTimeout bounds one connection attempt (default 10 s).
	DialTimeout time.Duration
}

type refusedRange struct {
	prefix netip.Prefix
	why    string
}

var refused = func() []refusedRange {
	var out []refusedRange
	for _, r := range [][2]string{
		{"0.0.0.0/8", "a 'this network' address"},
		{"10.0.0.0/8", "a private address"},
		{"100.64.0.0/10", "a carrier-grade NAT address"},
		{"127.0.0.0/8", "a loopback address"},
		{"169.254.0.0/16", "a link-local address (cloud metadata)"},
		{"172.16.0.0/12", "a private address"},
		{"192.0.0.0/24", "an IETF protocol address"},
		{"192.168.0.0/16", "a private address"},
		{"198.18.0.0/15", "a benchmarking address"},
		{"224.0.0.0/4", "a multicast address"},
		{"240.0.0.0/4", "a reserved address"},
		{"::/128", "the unspecified address"},
		{"::1/128", "a loopback address"},
		{"100::/64", "a discard address"},
		{"fc00::/7", "a private (unique local) address"},
		{"fe80::/10", "a link-local address"},
		{"ff00::/8", "a multicast address"},
	} {
		out = append(out, refusedRange{netip.MustParsePrefix(r[0]), r[1]})
	}
	return out
}()

var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
)

// Check returns nil if ip may be dialled, else an EForbidden error that
// names the range and how to allow it.
func (g *Guard) Check(ip netip.Addr) error {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return cairn.Errorf(cairn.EForbidden, "refused an invalid destination address")
	}
	if g != nil {
		for _, p := range g.Allow {
			if p.Contains(ip) {
				return nil
			}
		}
	}
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip):
			return g.Check(netip.AddrFrom4([4]byte(b[12:16])))
		case sixTo4.Contains(ip):
			return g.Check(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	for _, r := range refused {
		if r.prefix.Contains(ip) {
			return cairn.Errorf(cairn.EForbidden, "destination %s is %s, refused by the SSRF guard (allow it with --forward-allow-cidr)", ip, r.why)
		}
	}
	return nil
}

// CheckHost refuses a host that is an IP literal in a refused range, so a
// forwarder pointing at one is rejected when it is saved. Names are only
// checked when dialled.
func (g *Guard) CheckHost(host string) error {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil
	}
	return g.Check(ip)
}

// DialContext dials like net.Dialer.DialContext, refusing destinations
// Check refuses. The refusal comes back wrapped in a *net.OpError;
// cairn.ErrorCode finds its EForbidden code.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	timeout := 10 * time.Second
	if g != nil && g.DialTimeout > 0 {
		timeout = g.DialTimeout
	}
	d := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: g.control}
	return d.DialContext(ctx, network, addr)
}

// Dial is DialContext without a context (for clients that take a
// Dial(network, address) function).
func (g *Guard) Dial(network, addr string) (net.Conn, error) {
	return g.DialContext(context.Background(), network, addr)
}

func (g *Guard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return cairn.Errorf(cairn.EForbidden, "refused destination %q: not an IP address", address)
	}
	return g.Check(ap.Addr())
}

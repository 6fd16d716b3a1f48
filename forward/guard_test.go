package forward_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/forward"
)

func TestGuardRanges(t *testing.T) {
	g := &forward.Guard{}
	for _, c := range []struct {
		addr string
		ok   bool
	}{
		{"8.8.8.8", true},
		{"203.0.113.9", true},
		{"2606:4700:4700::1111", true},
		{"127.0.0.1", false},
		{"127.255.0.1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"172.32.0.1", true},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"100.64.0.1", false},      // carrier-grade NAT
		{"100.100.100.200", false}, // Alibaba metadata, inside CGNAT
		{"0.0.0.0", false},
		{"224.0.0.1", false},
		{"255.255.255.255", false},
		{"::1", false},
		{"::", false},
		{"fe80::1", false},
		{"fd00:ec2::254", false}, // AWS metadata over IPv6
		{"fc00::1", false},
		{"ff02::1", false},
		{"::ffff:127.0.0.1", false},  // IPv4-mapped loopback
		{"::ffff:8.8.8.8", true},     // IPv4-mapped public
		{"64:ff9b::a00:1", false},    // NAT64 of 10.0.0.1
		{"64:ff9b::808:808", true},   // NAT64 of 8.8.8.8
		{"2002:a9fe:a9fe::1", false}, // 6to4 of 169.254.169.254
	} {
		err := g.Check(netip.MustParseAddr(c.addr))
		if c.ok && err != nil {
			t.Errorf("%s refused: %v", c.addr, err)
		}
		if !c.ok && cairn.ErrorCode(err) != cairn.EForbidden {
			t.Errorf("%s: %v, want forbidden", c.addr, err)
		}
	}
	allow := &forward.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
	for _, a := range []string{"10.9.8.7", "::1", "::ffff:10.0.0.1"} {
		if err := allow.Check(netip.MustParseAddr(a)); err != nil {
			t.Errorf("allowed %s refused: %v", a, err)
		}
	}
	if err := allow.Check(netip.MustParseAddr("192.168.0.1")); cairn.ErrorCode(err) != cairn.EForbidden {
		t.Errorf("192.168.0.1 outside the allow-list: %v", err)
	}
	if err := g.CheckHost("127.0.0.1"); cairn.ErrorCode(err) != cairn.EForbidden {
		t.Errorf("CheckHost(127.0.0.1) = %v, want forbidden", err)
	}
	if err := g.CheckHost("siem.example.com"); err != nil {
		t.Errorf("CheckHost of a name = %v; names are checked when dialled", err)
	}
}

// The guard checks the address actually dialled, after DNS: "localhost"
// is refused although it is a name, and allowed only by the allow-list.
func TestGuardDialsAfterResolution(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for _, host := range []string{"127.0.0.1", "localhost"} {
		_, err := (&forward.Guard{}).DialContext(t.Context(), "tcp", net.JoinHostPort(host, port))
		if cairn.ErrorCode(err) != cairn.EForbidden {
			t.Fatalf("dial %s without an allow-list: %v, want forbidden", host, err)
		}
	}
	g := &forward.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
	c, err := g.DialContext(t.Context(), "tcp", net.JoinHostPort("localhost", port))
	if err != nil {
		t.Fatalf("dial localhost with loopback allowed: %v", err)
	}
	c.Close()
}

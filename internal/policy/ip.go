package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/portcullis/portcullis/internal/problem"
)

// IPRules is an allow list and a deny list of addresses and CIDR prefixes,
// IPv4 and IPv6. A client is denied when it matches the deny list, or when
// the allow list is not empty and it matches nothing there: deny wins.
// IPRules is immutable and safe for concurrent use.
//
// Lookups cost one map probe per distinct prefix length in a list (at most
// 33 for IPv4 and 129 for IPv6), whatever the number of entries.
type IPRules struct {
	allow, deny prefixSet
}

// prefixSet holds masked prefixes by family, with the lengths present,
// longest first.
type prefixSet struct {
	v4, v6         map[netip.Prefix]struct{}
	v4Bits, v6Bits []int
}

func (s *prefixSet) empty() bool { return len(s.v4) == 0 && len(s.v6) == 0 }

func (s *prefixSet) add(p netip.Prefix) {
	m, bits := &s.v6, &s.v6Bits
	if p.Addr().Is4() {
		m, bits = &s.v4, &s.v4Bits
	}
	if *m == nil {
		*m = make(map[netip.Prefix]struct{})
	}
	(*m)[p] = struct{}{}
	if !slices.Contains(*bits, p.Bits()) {
		*bits = append(*bits, p.Bits())
		slices.Sort(*bits)
		slices.Reverse(*bits)
	}
}

// contains reports whether a, which is unmapped and zone-free, falls in any
// prefix. Prefix never allocates for a valid address.
func (s *prefixSet) contains(a netip.Addr) bool {
	m, bits := s.v6, s.v6Bits
	if a.Is4() {
		m, bits = s.v4, s.v4Bits
	}
	for _, n := range bits {
		p, err := a.Prefix(n)
		if err != nil {
			continue
		}
		if _, ok := m[p]; ok {
			return true
		}
	}
	return false
}

// NewIPRules parses allow and deny entries: single addresses ("192.0.2.7",
// "2001:db8::1") or CIDR prefixes ("10.0.0.0/8", "2001:db8::/32").
// IPv4-mapped IPv6 entries are treated as the IPv4 addresses they carry.
// A prefix with host bits set, a zone, or anything unparsable is an error
// naming the list, the index and the entry. An empty allow list allows every
// address the deny list does not match.
func NewIPRules(allow, deny []string) (*IPRules, error) {
	r := &IPRules{}
	for _, l := range []struct {
		name    string
		entries []string
		set     *prefixSet
	}{{"allow", allow, &r.allow}, {"deny", deny, &r.deny}} {
		for i, e := range l.entries {
			p, err := parseIPEntry(e)
			if err != nil {
				return nil, fmt.Errorf("ip %s[%d] %q: %w", l.name, i, e, err)
			}
			l.set.add(p)
		}
	}
	return r, nil
}

func parseIPEntry(e string) (netip.Prefix, error) {
	s := strings.TrimSpace(e)
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("empty entry")
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not an IP address or CIDR prefix")
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("zones are not allowed in IP rules")
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not a CIDR prefix (like 10.0.0.0/8 or 2001:db8::/32)")
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("host bits are set (did you mean %s)", p.Masked())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p, nil
}

// Check decides whether remoteAddr may call: it accepts "host:port" (as in
// http.Request.RemoteAddr, IPv6 in brackets) or a bare address, and ignores
// any IPv6 zone. It returns nil or a *problem.Error with code ip.denied
// (403) whose Log gives the address and the reason. It fails closed: an
// address it cannot parse is denied. It does not allocate when it allows.
func (r *IPRules) Check(remoteAddr string) error {
	a, ok := parseRemoteAddr(remoteAddr)
	if !ok {
		return ipDenied(remoteAddr, "unparsable client address")
	}
	if r.deny.contains(a) {
		return ipDenied(remoteAddr, "address is on the deny list")
	}
	if !r.allow.empty() && !r.allow.contains(a) {
		return ipDenied(remoteAddr, "address is not on the allow list")
	}
	return nil
}

// parseRemoteAddr picks the parser by shape, because a failed parse
// allocates its error: "[v6]:port" and "v4:port" carry a port, anything
// else (a bare v4 or v6 address) does not.
func parseRemoteAddr(s string) (netip.Addr, bool) {
	var a netip.Addr
	if strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1 {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	} else {
		var err error
		if a, err = netip.ParseAddr(s); err != nil {
			return netip.Addr{}, false
		}
	}
	return a.WithZone("").Unmap(), true
}

func ipDenied(addr, reason string) error {
	return &problem.Error{
		Code:   problem.CodeIPDenied,
		Detail: "Requests from your network address are not allowed for this API.",
		Log:    []any{"client_addr", addr, "reason", reason},
	}
}

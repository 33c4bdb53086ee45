package outbound

import (
	"net/netip"
	"strings"
)

// blockRule is one refused address range and why it is refused.
type blockRule struct {
	prefix netip.Prefix
	reason string
}

func rules(reason string, cidrs ...string) []blockRule {
	out := make([]blockRule, len(cidrs))
	for i, c := range cidrs {
		out[i] = blockRule{netip.MustParsePrefix(c), reason}
	}
	return out
}

// v4Rules are checked in order; the first match gives the reason, so the
// more specific ranges come first.
var v4Rules = concat(
	rules("cloud metadata address", "169.254.169.254/32", "169.254.170.2/32", "100.100.100.200/32"),
	rules("broadcast address", "255.255.255.255/32"),
	rules("unspecified address", "0.0.0.0/8"),
	rules("loopback address", "127.0.0.0/8"),
	rules("private address", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"),
	rules("link-local address", "169.254.0.0/16"),
	rules("shared address space (CGNAT)", "100.64.0.0/10"),
	rules("multicast address", "224.0.0.0/4"),
	rules("reserved address", "240.0.0.0/4", "192.0.0.0/24", "198.18.0.0/15",
		"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"),
)

// v6Rules are checked after IPv4-mapped addresses have been unmapped.
var v6Rules = concat(
	rules("cloud metadata address", "fd00:ec2::254/128"),
	rules("unspecified address", "::/128"),
	rules("loopback address", "::1/128"),
	rules("IPv4-compatible address", "::/96"),
	rules("private address", "fc00::/7", "fec0::/10"),
	rules("link-local address", "fe80::/10"),
	rules("multicast address", "ff00::/8"),
	rules("local-use NAT64 address", "64:ff9b:1::/48"),
	rules("Teredo address", "2001::/32"),
	rules("reserved address", "100::/64", "2001:db8::/32"),
)

func concat(lists ...[]blockRule) []blockRule {
	var out []blockRule
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

var (
	prefix6to4  = netip.MustParsePrefix("2002::/16")
	prefixNAT64 = netip.MustParsePrefix("64:ff9b::/96")
)

// blockReason returns why ip must not be contacted, or "" when it is a
// public unicast address. IPv4-mapped IPv6 addresses are judged as the IPv4
// address they carry, and the IPv4 address embedded in 6to4 (2002::/16) and
// well-known NAT64 (64:ff9b::/96) addresses is judged as well.
func blockReason(ip netip.Addr) string {
	if !ip.IsValid() {
		return "invalid address"
	}
	ip = ip.WithZone("").Unmap()
	if ip.Is4() {
		return firstMatch(v4Rules, ip)
	}
	if r := firstMatch(v6Rules, ip); r != "" {
		return r
	}
	b := ip.As16()
	var embedded netip.Addr
	var kind string
	switch {
	case prefix6to4.Contains(ip):
		embedded, kind = netip.AddrFrom4([4]byte(b[2:6])), "6to4"
	case prefixNAT64.Contains(ip):
		embedded, kind = netip.AddrFrom4([4]byte(b[12:16])), "NAT64"
	default:
		return ""
	}
	if r := firstMatch(v4Rules, embedded); r != "" {
		return r + " embedded in " + kind + " address"
	}
	return ""
}

func firstMatch(rs []blockRule, ip netip.Addr) string {
	for _, r := range rs {
		if r.prefix.Contains(ip) {
			return r.reason
		}
	}
	return ""
}

// blockedNames are host names refused before any resolution: cloud metadata
// endpoints and the loopback aliases of common /etc/hosts files.
var blockedNames = map[string]string{
	"metadata.google.internal":   "cloud metadata hostname",
	"metadata.goog":              "cloud metadata hostname",
	"metadata":                   "cloud metadata hostname",
	"instance-data":              "cloud metadata hostname",
	"instance-data.ec2.internal": "cloud metadata hostname",
	"metadata.azure.internal":    "cloud metadata hostname",
	"metadata.tencentyun.com":    "cloud metadata hostname",
	"localhost":                  "loopback hostname",
	"localhost.localdomain":      "loopback hostname",
	"ip6-localhost":              "loopback hostname",
	"ip6-loopback":               "loopback hostname",
}

// nameReason returns why the (normalized) host name must not be contacted,
// or "" when the name itself is acceptable and only its addresses matter.
func nameReason(host string) string {
	if r, ok := blockedNames[host]; ok {
		return r
	}
	if strings.HasSuffix(host, ".localhost") {
		return "loopback hostname"
	}
	return ""
}

// normalizeHost lower-cases a host name and strips one trailing dot, so that
// "LOCALHOST." and "localhost" are judged alike.
func normalizeHost(host string) string {
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// ambiguousNumeric reports whether host looks like a numeric IPv4 address in
// a non-canonical form ("2130706433", "0x7f.1", "0177.0.0.1") that some
// resolvers would interpret as an address. Such hosts are rejected outright:
// no legitimate host name has an all-numeric top-level label.
func ambiguousNumeric(host string) bool {
	labels := strings.Split(host, ".")
	last := labels[len(labels)-1]
	if last == "" {
		return false
	}
	if strings.HasPrefix(last, "0x") {
		last = last[2:]
		if last == "" {
			return true
		}
		for _, c := range last {
			if !strings.ContainsRune("0123456789abcdef", c) {
				return false
			}
		}
		return true
	}
	for _, c := range last {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

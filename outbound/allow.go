package outbound

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// allowList is the parsed form of Config.Allow.
type allowList struct {
	prefixes  []netip.Prefix      // CIDRs and bare IPs (as /32 or /128)
	hostPorts map[string]struct{} // canonical "host:port", host an IP or a name
}

// ParseAllowList splits a comma-separated setting (an environment variable,
// say) into allow-list entries, trimming blanks and dropping empty items, and
// validates each one. Accepted entries are CIDRs ("127.0.0.0/8"), bare IPs
// ("127.0.0.1", same as /32 or /128), and host:port pairs ("127.0.0.1:8080",
// "[::1]:8080", "minio:9000").
func ParseAllowList(s string) ([]string, error) {
	var out []string
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if _, err := parseAllow([]string{item}); err != nil {
			return nil, err
		}
		out = append(out, item)
	}
	return out, nil
}

func parseAllow(entries []string) (*allowList, error) {
	al := &allowList{hostPorts: map[string]struct{}{}}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			return nil, fmt.Errorf("outbound: empty allow-list entry")
		}
		if strings.Contains(e, "/") {
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return nil, fmt.Errorf("outbound: bad allow-list CIDR %q: %w", e, err)
			}
			if p.Addr().Is4In6() {
				if p.Bits() < 96 {
					return nil, fmt.Errorf("outbound: bad allow-list CIDR %q: IPv4-mapped prefix shorter than /96", e)
				}
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			al.prefixes = append(al.prefixes, p.Masked())
			continue
		}
		if ip, err := netip.ParseAddr(e); err == nil {
			if ip.Zone() != "" {
				return nil, fmt.Errorf("outbound: bad allow-list entry %q: zones are not supported", e)
			}
			ip = ip.Unmap()
			al.prefixes = append(al.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
			continue
		}
		host, port, err := net.SplitHostPort(e)
		if err != nil {
			return nil, fmt.Errorf("outbound: bad allow-list entry %q: want CIDR, IP or host:port", e)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return nil, fmt.Errorf("outbound: bad allow-list entry %q: bad port", e)
		}
		key, ok := canonicalHost(host)
		if !ok {
			return nil, fmt.Errorf("outbound: bad allow-list entry %q: bad host", e)
		}
		al.hostPorts[net.JoinHostPort(key, port)] = struct{}{}
	}
	return al, nil
}

// canonicalHost returns the form of host used for allow-list keys: the
// unmapped, zone-less IP string for addresses, the normalized name otherwise.
func canonicalHost(host string) (string, bool) {
	if host == "" {
		return "", false
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.WithZone("").Unmap().String(), true
	}
	h := normalizeHost(host)
	if h == "" || strings.ContainsAny(h, " /\\@[]%") || ambiguousNumeric(h) {
		return "", false
	}
	return h, true
}

// allowsIP reports whether ip (on port) is allowed by a CIDR or host:port.
func (al *allowList) allowsIP(ip netip.Addr, port string) bool {
	ip = ip.WithZone("").Unmap()
	for _, p := range al.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	_, ok := al.hostPorts[net.JoinHostPort(ip.String(), port)]
	return ok
}

// allowsName reports whether the normalized host name on port is allowed by
// a name:port entry. Such an entry trusts the name and whatever it resolves to.
func (al *allowList) allowsName(host, port string) bool {
	_, ok := al.hostPorts[net.JoinHostPort(host, port)]
	return ok
}

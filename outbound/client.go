// Package outbound is the only way Warden makes outbound HTTP requests:
// verify-url downloads, webhook callback POSTs and model_file_url downloads.
//
// It guards against server-side request forgery. Only http and https URLs
// are accepted, and every connection is checked after DNS resolution, at
// dial time: the host is resolved, every resolved address is checked against
// the block list (loopback, private, link-local and cloud metadata, CGNAT,
// multicast, broadcast, unspecified and reserved ranges, including their
// IPv4-mapped, 6to4 and NAT64 forms), and the checked address itself is
// dialled, so DNS rebinding cannot swap in a different one. The socket is
// checked once more just before connect. Redirects are re-validated and
// limited. Config.Allow lets tests and local development reach specific
// private targets; with it empty nothing private is reachable.
package outbound

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults and fixed limits.
const (
	DefaultMaxRedirects = 3
	DefaultTimeout      = 30 * time.Second
	DefaultUserAgent    = "Warden/1"

	dialTimeout           = 10 * time.Second
	tlsHandshakeTimeout   = 10 * time.Second
	responseHeaderTimeout = 30 * time.Second
	maxResponseHeaderSize = 64 << 10
)

// Resolver looks up the addresses of a host name. *net.Resolver satisfies it;
// tests substitute a fixed table.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Config configures a Client. The zero value is usable: nothing private is
// reachable, 3 redirects, 30s per request, User-Agent "Warden/1".
type Config struct {
	// Allow lists targets that bypass the block list: CIDRs ("127.0.0.0/8"),
	// bare IPs ("127.0.0.1") or host:port pairs ("127.0.0.1:8080",
	// "minio:9000"). A name:port entry trusts the name and whatever it
	// resolves to. See ParseAllowList for reading it from a setting.
	Allow []string
	// MaxRedirects is the most redirects followed: 0 means the default (3),
	// a negative value means none.
	MaxRedirects int
	// Timeout is the overall per-request deadline, body included: 0 means
	// the default (30s), a negative value means none beyond the caller's
	// context (for large downloads). It also caps the response header wait.
	Timeout time.Duration
	// UserAgent is sent with every request: "" means "Warden/1".
	UserAgent string
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver Resolver
}

// Client makes guarded outbound requests. It is safe for concurrent use.
type Client struct {
	allow        *allowList
	maxRedirects int
	timeout      time.Duration // 0 means none
	userAgent    string
	resolver     Resolver
	hc           *http.Client

	// onDial, if set (tests only), is called with the checked IP:port just
	// before each connection attempt; an error aborts the attempt.
	onDial func(addr string) error
	// wrapBody, if set (tests only), wraps each Download response body.
	wrapBody func(io.Reader) io.Reader
}

// New returns a Client for cfg. It fails when an Allow entry is malformed.
func New(cfg Config) (*Client, error) {
	al, err := parseAllow(cfg.Allow)
	if err != nil {
		return nil, err
	}
	c := &Client{
		allow:        al,
		maxRedirects: cfg.MaxRedirects,
		timeout:      cfg.Timeout,
		userAgent:    cfg.UserAgent,
		resolver:     cfg.Resolver,
	}
	switch {
	case c.maxRedirects == 0:
		c.maxRedirects = DefaultMaxRedirects
	case c.maxRedirects < 0:
		c.maxRedirects = 0
	}
	switch {
	case c.timeout == 0:
		c.timeout = DefaultTimeout
	case c.timeout < 0:
		c.timeout = 0
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	if c.resolver == nil {
		c.resolver = net.DefaultResolver
	}
	headerTimeout := responseHeaderTimeout
	if c.timeout > 0 && c.timeout < headerTimeout {
		headerTimeout = c.timeout
	}
	tr := &http.Transport{
		Proxy:                  nil, // a proxy would be dialled instead of the checked target
		DialContext:            c.dialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    tlsHandshakeTimeout,
		ResponseHeaderTimeout:  headerTimeout,
		ExpectContinueTimeout:  time.Second,
		IdleConnTimeout:        90 * time.Second,
		MaxIdleConns:           32,
		MaxResponseHeaderBytes: maxResponseHeaderSize,
		DisableCompression:     true, // downloads are hashed byte for byte
	}
	c.hc = &http.Client{
		Transport:     &guardedTransport{c: c, base: tr},
		CheckRedirect: c.checkRedirect,
		Timeout:       c.timeout,
	}
	return c, nil
}

// HTTP returns the guarded *http.Client, for requests other than downloads
// (webhook POSTs). Every request it sends, and every redirect it follows, is
// validated like ValidateURL and checked again at dial time; it applies
// Config.Timeout and never uses a proxy. Each call returns a fresh shallow
// copy, so callers may change its fields without affecting others.
func (c *Client) HTTP() *http.Client {
	hc := *c.hc
	return &hc
}

// ValidateURL parses raw and checks it without touching the network: the
// scheme must be http or https, the host non-empty, the port numeric, and a
// literal IP or known-dangerous host name (cloud metadata, localhost) must be
// allowed by Config.Allow. Host names that pass still have their resolved
// addresses checked at dial time. Errors wrap ErrBadURL or
// ErrForbiddenAddress and never contain the URL's userinfo.
func (c *Client) ValidateURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the raw URL, userinfo included
		}
		return nil, badURL("%v", err)
	}
	if err := c.validate(u); err != nil {
		return nil, err
	}
	return u, nil
}

// validate is ValidateURL for an already parsed URL.
func (c *Client) validate(u *url.URL) error {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return badURL("scheme %q not allowed, want http or https", u.Scheme)
	}
	if u.Opaque != "" {
		return badURL("opaque URL not allowed")
	}
	host := u.Hostname()
	if host == "" {
		return badURL("missing host")
	}
	port := u.Port()
	if port == "" {
		if scheme == "https" {
			port = "443"
		} else {
			port = "80"
		}
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return badURL("bad port %q", port)
	}
	return c.checkHost(host, port)
}

// checkHost applies the checks possible without resolution to host (a name
// or literal IP, without brackets) on port.
func (c *Client) checkHost(host, port string) error {
	if ip, err := netip.ParseAddr(host); err == nil {
		return c.checkIP(host, ip, port)
	}
	name := normalizeHost(host)
	if name == "" || strings.ContainsAny(name, " %\\") {
		return badURL("bad host %q", host)
	}
	if ambiguousNumeric(name) {
		return badURL("ambiguous numeric host %q", host)
	}
	if c.allow.allowsName(name, port) {
		return nil
	}
	if r := nameReason(name); r != "" {
		return &BlockedError{Host: host, Reason: r}
	}
	return nil
}

// checkIP refuses ip on port unless it is public or allowed.
func (c *Client) checkIP(host string, ip netip.Addr, port string) error {
	if c.allow.allowsIP(ip, port) {
		return nil
	}
	if r := blockReason(ip); r != "" {
		return &BlockedError{Host: host, IP: ip.WithZone(""), Reason: r}
	}
	return nil
}

// checkRedirect re-validates every redirect target and bounds the chain.
func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > c.maxRedirects {
		return fmt.Errorf("%w: stopped after %d", ErrTooManyRedirects, c.maxRedirects)
	}
	return c.validate(req.URL)
}

// guardedTransport validates each request URL before the base transport
// sees it, so requests made through HTTP() get the same checks as Download.
type guardedTransport struct {
	c    *Client
	base *http.Transport
}

// RoundTrip implements http.RoundTripper.
func (t *guardedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.c.validate(req.URL); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	if req.Header.Get("User-Agent") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("User-Agent", t.c.userAgent)
	}
	return t.base.RoundTrip(req)
}

// dialContext resolves addr, refuses it if any resolved address is blocked,
// and dials the checked addresses in turn. The dialer's Control hook checks
// the socket's address once more just before connect.
func (c *Client) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, badURL("bad address %q", addr)
	}
	if err := c.checkHost(host, port); err != nil {
		return nil, err
	}
	trusted := c.allow.allowsName(normalizeHost(host), port)

	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		lookup := "ip"
		switch network {
		case "tcp4":
			lookup = "ip4"
		case "tcp6":
			lookup = "ip6"
		}
		ips, err = c.resolver.LookupNetIP(ctx, lookup, host)
		if err != nil {
			return nil, fmt.Errorf("outbound: resolving %s: %w", host, err)
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("outbound: resolving %s: no addresses", host)
		}
	}
	if !trusted {
		// Refuse if any answer is blocked: a mixed answer is an attack.
		for _, ip := range ips {
			if err := c.checkIP(host, ip, port); err != nil {
				return nil, err
			}
		}
	}

	d := &net.Dialer{Timeout: dialTimeout}
	if !trusted {
		d.Control = c.control(host)
	}
	var errs []error
	for _, ip := range ips {
		target := net.JoinHostPort(ip.Unmap().String(), port)
		if c.onDial != nil {
			if err := c.onDial(target); err != nil {
				return nil, err
			}
		}
		conn, err := d.DialContext(ctx, network, target)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// control returns a net.Dialer Control hook that checks the socket's remote
// address, just before connect, as a second line of defence behind the
// checks in dialContext. host is only used in the error text.
func (c *Client) control(host string) func(network, address string, _ syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("outbound: unexpected socket address %q", address)
		}
		return c.checkIP(host, ap.Addr(), strconv.Itoa(int(ap.Port())))
	}
}

package outbound

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestBlockReason(t *testing.T) {
	tests := []struct {
		ip   string
		want string // substring of the reason; "" means public
	}{
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"10.0.0.1", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"::ffff:10.0.0.1", "private"},
		{"fc00::1", "private"},
		{"fd12:3456::1", "private"},
		{"169.254.169.254", "metadata"},
		{"::ffff:169.254.169.254", "metadata"},
		{"fd00:ec2::254", "metadata"},
		{"100.100.100.200", "metadata"},
		{"169.254.1.1", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"::", "unspecified"},
		{"100.64.0.1", "CGNAT"},
		{"100.127.255.255", "CGNAT"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"2001:db8::1", "reserved"},
		{"::10.0.0.1", "IPv4-compatible"},
		{"2002:7f00:1::", "loopback address embedded in 6to4"},
		{"2002:a9fe:a9fe::1", "metadata address embedded in 6to4"},
		{"64:ff9b::10.0.0.1", "private address embedded in NAT64"},
		{"64:ff9b:1::1", "NAT64"},
		{"2001:0:4136:e378::1", "Teredo"},
		// Public.
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"172.15.255.255", ""},
		{"172.32.0.0", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"::ffff:8.8.8.8", ""},
		{"2606:4700:4700::1111", ""},
		{"2002:808:808::1", ""},
		{"64:ff9b::8.8.8.8", ""},
	}
	for _, tt := range tests {
		got := blockReason(netip.MustParseAddr(tt.ip))
		if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("blockReason(%s) = %q, want %q", tt.ip, got, tt.want)
		}
	}
}

func TestParseAllowList(t *testing.T) {
	good := []struct {
		in   string
		want int
	}{
		{"", 0},
		{" , ,", 0},
		{"127.0.0.0/8", 1},
		{"127.0.0.1:8080, [::1]:9000 ,10.0.0.0/8", 3},
		{"127.0.0.1", 1},
		{"minio:9000,::1,::ffff:127.0.0.0/104", 3},
	}
	for _, tt := range good {
		got, err := ParseAllowList(tt.in)
		if err != nil || len(got) != tt.want {
			t.Errorf("ParseAllowList(%q) = %q, %v; want %d entries", tt.in, got, err, tt.want)
		}
		if _, err := New(Config{Allow: got}); err != nil {
			t.Errorf("New(Allow: %q) = %v", got, err)
		}
	}
	for _, in := range []string{
		"127.0.0.1/33", "10.0.0.0/x", "not a host", "host", "127.0.0.1:0",
		"127.0.0.1:65536", "127.0.0.1:http", ":80", "fe80::1%eth0",
		"::ffff:0:0/80", "2130706433:80", "a/b:80", "127.0.0.1:08080",
	} {
		if got, err := ParseAllowList(in); err == nil {
			t.Errorf("ParseAllowList(%q) = %q, want error", in, got)
		}
		if _, err := New(Config{Allow: []string{in}}); err == nil {
			t.Errorf("New(Allow: %q) succeeded, want error", in)
		}
	}
}

func TestValidateURL(t *testing.T) {
	open, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := New(Config{Allow: []string{"127.0.0.1:8080", "10.1.0.0/16", "minio:9000"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		c    *Client
		url  string
		want error
	}{
		{open, "https://example.com/model.bin", nil},
		{open, "HTTP://Example.COM:8080/x?y=1", nil},
		{open, "https://8.8.8.8/", nil},
		{open, "https://[2606:4700:4700::1111]/", nil},
		{open, "https://user:secret@example.com/", nil},
		{open, "ftp://example.com/file", ErrBadURL},
		{open, "file:///etc/passwd", ErrBadURL},
		{open, "gopher://example.com/", ErrBadURL},
		{open, "javascript:alert(1)", ErrBadURL},
		{open, "http:example.com", ErrBadURL},
		{open, "//example.com/", ErrBadURL},
		{open, "example.com", ErrBadURL},
		{open, "", ErrBadURL},
		{open, "http://", ErrBadURL},
		{open, "http:///path", ErrBadURL},
		{open, "http://:80/", ErrBadURL},
		{open, "http://example.com:0/", ErrBadURL},
		{open, "http://example.com:65536/", ErrBadURL},
		{open, "http://exa mple.com/", ErrBadURL},
		{open, "http://2130706433/", ErrBadURL},
		{open, "http://0x7f.1/", ErrBadURL},
		{open, "http://0177.0.0.1/", ErrBadURL},
		{open, "http://127.1/", ErrBadURL},
		{open, "http://127.0.0.1/", ErrForbiddenAddress},
		{open, "http://127.0.0.1:8080/", ErrForbiddenAddress},
		{open, "http://[::1]/", ErrForbiddenAddress},
		{open, "http://[::ffff:127.0.0.1]/", ErrForbiddenAddress},
		{open, "http://[fe80::1%25eth0]/", ErrForbiddenAddress},
		{open, "http://localhost/", ErrForbiddenAddress},
		{open, "http://LocalHost.:8080/", ErrForbiddenAddress},
		{open, "http://app.localhost/", ErrForbiddenAddress},
		{open, "http://169.254.169.254/latest/meta-data/", ErrForbiddenAddress},
		{open, "http://metadata.google.internal/computeMetadata/v1/", ErrForbiddenAddress},
		{open, "http://METADATA.GOOGLE.INTERNAL./", ErrForbiddenAddress},
		{open, "http://10.0.0.1/", ErrForbiddenAddress},
		{open, "http://0.0.0.0/", ErrForbiddenAddress},
		{open, "http://100.64.0.1/", ErrForbiddenAddress},
		{open, "https://user:secret@10.0.0.1/", ErrForbiddenAddress},
		{dev, "http://127.0.0.1:8080/", nil},
		{dev, "http://127.0.0.1:8081/", ErrForbiddenAddress},
		{dev, "http://127.0.0.1/", ErrForbiddenAddress},
		{dev, "http://localhost:8080/", ErrForbiddenAddress},
		{dev, "http://10.1.2.3:1234/", nil},
		{dev, "http://[::ffff:10.1.2.3]/", nil},
		{dev, "http://10.2.0.1/", ErrForbiddenAddress},
		{dev, "http://MINIO:9000/bucket", nil},
		{dev, "https://10.1.0.1/", nil},
	}
	for _, tt := range tests {
		u, err := tt.c.ValidateURL(tt.url)
		switch {
		case tt.want == nil && err != nil:
			t.Errorf("ValidateURL(%q) = %v, want ok", tt.url, err)
		case tt.want == nil && u == nil:
			t.Errorf("ValidateURL(%q) returned nil URL", tt.url)
		case tt.want != nil && !errors.Is(err, tt.want):
			t.Errorf("ValidateURL(%q) = %v, want %v", tt.url, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("ValidateURL(%q) error leaks userinfo: %v", tt.url, err)
		}
	}
}

func TestBlockedErrorMessage(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ValidateURL("http://10.0.0.1/")
	var be *BlockedError
	if !errors.As(err, &be) || be.IP != netip.MustParseAddr("10.0.0.1") {
		t.Fatalf("err = %#v, want *BlockedError for 10.0.0.1", err)
	}
	if got, want := err.Error(), "refusing to connect to 10.0.0.1: private address"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}

func FuzzValidateURL(f *testing.F) {
	for _, s := range []string{
		"https://example.com/model.bin", "http://127.0.0.1:8080/", "http://[::ffff:127.0.0.1]/",
		"http://[fe80::1%25eth0]:80/", "ftp://x", "http://user:pw@10.0.0.1/", "http://0x7f.1/",
		"http://metadata.google.internal./", "http://%31%32%37.0.0.1/", "http://[2002:7f00:1::]/",
		"http://a..b./", "http://.../", "http://0x/", "http://[::]:0/",
	} {
		f.Add(s)
	}
	c, err := New(Config{Allow: []string{"127.0.0.1:8080", "10.0.0.0/8", "minio:9000"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := c.ValidateURL(raw)
		if err == nil {
			if u == nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
				t.Fatalf("ValidateURL(%q) accepted %#v", raw, u)
			}
			return
		}
		if !errors.Is(err, ErrBadURL) && !errors.Is(err, ErrForbiddenAddress) {
			t.Fatalf("ValidateURL(%q) = %v: not a typed error", raw, err)
		}
	})
}

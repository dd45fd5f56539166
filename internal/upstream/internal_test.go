package upstream

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"testing"
)

func TestForwardedElement(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, remote, host string
		tls                bool
		want               string
	}{
		{"IPv4 over TLS", "192.0.2.60:4711", "api.example.com", true, "for=192.0.2.60;host=api.example.com;proto=https"},
		{"IPv6 is bracketed and quoted", "[2001:db8:cafe::17]:4711", "api.example.com", true, `for="[2001:db8:cafe::17]";host=api.example.com;proto=https`},
		{"IPv6 zone is dropped", "[fe80::1%eth0]:1", "a", false, `for="[fe80::1]";host=a;proto=http`},
		{"IPv4-mapped IPv6 is IPv4", "[::ffff:192.0.2.1]:1", "a", false, "for=192.0.2.1;host=a;proto=http"},
		{"host with port is quoted", "127.0.0.1:1", "api.example.com:8443", true, `for=127.0.0.1;host="api.example.com:8443";proto=https`},
		{"quotes in host are escaped", "127.0.0.1:1", `a"b\c`, true, `for=127.0.0.1;host="a\"b\\c";proto=https`},
		{"unparsable address is unknown", "@unix", "a", false, "for=unknown;host=a;proto=http"},
		{"no host", "127.0.0.1:1", "", false, "for=127.0.0.1;proto=http"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &http.Request{RemoteAddr: tc.remote, Host: tc.host}
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if got := forwarded(r); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestJoinPath(t *testing.T) {
	t.Parallel()
	cases := []struct{ base, in, wantPath, wantRaw string }{
		{"", "/a", "/a", ""},
		{"/", "/a", "/a", ""},
		{"/v1", "/a", "/v1/a", ""},
		{"/v1/", "/a", "/v1/a", ""},
		{"/v1", "", "/v1", ""},
		{"/v1", "/a%2Fb", "/v1/a/b", "/v1/a%2Fb"},
		{"/v%2F1", "/a", "/v/1/a", "/v%2F1/a"},
	}
	for _, tc := range cases {
		base, err := url.Parse("https://h" + tc.base)
		if err != nil {
			t.Fatal(err)
		}
		in, err := url.Parse("https://g" + tc.in)
		if err != nil {
			t.Fatal(err)
		}
		joinPath(base, in)
		if in.Path != tc.wantPath || in.RawPath != tc.wantRaw {
			t.Errorf("%q + %q = %q (raw %q), want %q (raw %q)", tc.base, tc.in, in.Path, in.RawPath, tc.wantPath, tc.wantRaw)
		}
	}
}

func TestBufferPoolDoesNotAllocate(t *testing.T) {
	var p bufferPool
	p.Put(p.Get())
	allocs := testing.AllocsPerRun(100, func() { p.Put(p.Get()) })
	if allocs != 0 {
		t.Fatalf("%v allocations per Get/Put", allocs)
	}
	if b := p.Get(); len(b) != bufferSize {
		t.Fatalf("buffer of %d bytes", len(b))
	}
	p.Put(make([]byte, 10)) // foreign slices are dropped, not converted
}

package policy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/problem"
)

func TestIPRules(t *testing.T) {
	tests := []struct {
		name        string
		allow, deny []string
		addr        string
		allowed     bool
		reason      string // a word the log reason must contain when denied
	}{
		{"no rules allow everyone", nil, nil, "203.0.113.9:5000", true, ""},
		{"v4 in an allowed prefix", []string{"10.0.0.0/8"}, nil, "10.1.2.3:443", true, ""},
		{"v4 outside the allow list", []string{"10.0.0.0/8"}, nil, "11.0.0.1:443", false, "allow"},
		{"single v4 address", []string{"192.0.2.7"}, nil, "192.0.2.7:1", true, ""},
		{"single v4 address, neighbour", []string{"192.0.2.7"}, nil, "192.0.2.8:1", false, "allow"},
		{"deny wins over allow", []string{"10.0.0.0/8"}, []string{"10.9.0.0/16"}, "10.9.1.1:80", false, "deny"},
		{"deny list alone", nil, []string{"198.51.100.0/24"}, "198.51.100.200:80", false, "deny"},
		{"deny list alone, other address", nil, []string{"198.51.100.0/24"}, "198.51.101.1:80", true, ""},
		{"v6 with brackets and port", []string{"2001:db8::/32"}, nil, "[2001:db8:1::5]:443", true, ""},
		{"v6 outside", []string{"2001:db8::/32"}, nil, "[2001:db9::1]:443", false, "allow"},
		{"v6 single address", nil, []string{"2001:db8::1"}, "[2001:db8::1]:1", false, "deny"},
		{"v6 zone is ignored", nil, []string{"fe80::/10"}, "[fe80::1%eth0]:1", false, "deny"},
		{"bare v4 address", []string{"10.0.0.0/8"}, nil, "10.0.0.1", true, ""},
		{"bare v6 address", []string{"::1"}, nil, "::1", true, ""},
		{"v4-mapped v6 client matches a v4 rule", []string{"192.0.2.0/24"}, nil, "[::ffff:192.0.2.1]:80", true, ""},
		{"v4-mapped v6 rule matches a v4 client", nil, []string{"::ffff:192.0.2.0/120"}, "192.0.2.1:80", false, "deny"},
		{"v4 rules do not match v6 clients", []string{"0.0.0.0/0"}, nil, "[2001:db8::1]:80", false, "allow"},
		{"allow all v6", []string{"0.0.0.0/0", "::/0"}, nil, "[2001:db8::1]:80", true, ""},
		{"garbage fails closed", nil, nil, "not-an-address", false, "unparsable"},
		{"empty fails closed", nil, nil, "", false, "unparsable"},
		{"host name fails closed", nil, nil, "example.com:80", false, "unparsable"},
		{"out-of-range octet fails closed", nil, nil, "10.0.0.256:80", false, "unparsable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewIPRules(tt.allow, tt.deny)
			if err != nil {
				t.Fatal(err)
			}
			err = r.Check(tt.addr)
			if tt.allowed {
				if err != nil {
					t.Fatalf("Check(%q) = %v, want allowed", tt.addr, err)
				}
				return
			}
			pe := asProblem(t, err)
			if pe.Code != problem.CodeIPDenied || pe.HTTPStatus() != http.StatusForbidden {
				t.Fatalf("Check(%q): %s %d, want ip.denied 403", tt.addr, pe.Code, pe.HTTPStatus())
			}
			if reason, _ := logValue(pe, "reason").(string); !strings.Contains(reason, tt.reason) {
				t.Errorf("log reason %q does not mention %q", reason, tt.reason)
			}
			if strings.Contains(pe.Detail, tt.addr) && tt.addr != "" {
				t.Errorf("detail %q shows the address to the client", pe.Detail)
			}
		})
	}
}

func TestNewIPRulesErrors(t *testing.T) {
	tests := []struct {
		name        string
		allow, deny []string
		want        string
	}{
		{"garbage", []string{"10.0.0.0/8", "ten"}, nil, `ip allow[1] "ten"`},
		{"prefix too long", nil, []string{"10.0.0.0/33"}, `ip deny[0] "10.0.0.0/33"`},
		{"host bits set", []string{"10.0.0.1/8"}, nil, "did you mean 10.0.0.0/8"},
		{"empty entry", nil, []string{""}, "empty"},
		{"zone", []string{"fe80::1%eth0"}, nil, "zone"},
		{"host name", []string{"example.com"}, nil, `"example.com"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewIPRules(tt.allow, tt.deny)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewIPRules() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func FuzzIPRulesCheck(f *testing.F) {
	for _, s := range []string{"10.0.0.1:80", "[::1]:443", "::ffff:10.0.0.1", "[fe80::1%eth0]:1", "", "a:b:c"} {
		f.Add(s)
	}
	r, err := NewIPRules([]string{"10.0.0.0/8", "2001:db8::/32"}, []string{"10.9.0.0/16"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		err := r.Check(addr)
		if err == nil {
			a, ok := parseRemoteAddr(addr)
			if !ok || !(r.allow.contains(a) && !r.deny.contains(a)) {
				t.Fatalf("Check(%q) allowed an address outside the allow list or on the deny list", addr)
			}
		}
	})
}

package policy

import (
	"net/http"
	"strings"
	"testing"
)

func TestHeaderRulesApply(t *testing.T) {
	vars := &Vars{
		Application:       "app-17",
		ClientCertSubject: "CN=billing,O=Example",
		ClientCertSHA256:  "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		ClientIP:          "192.0.2.1",
		RequestID:         "req-42",
		API:               "api-a",
	}
	tests := []struct {
		name    string
		rules   []HeaderRule
		in      http.Header
		vars    *Vars
		want    http.Header
		dropped uint64
	}{
		{
			name:  "set replaces every value, with a canonical name",
			rules: []HeaderRule{{Op: "set", Name: "x-gateway", Value: "portcullis"}},
			in:    http.Header{"X-Gateway": {"spoofed", "twice"}},
			want:  http.Header{"X-Gateway": {"portcullis"}},
		},
		{
			name:  "add appends",
			rules: []HeaderRule{{Op: "add", Name: "Via", Value: "1.1 portcullis"}},
			in:    http.Header{"Via": {"1.1 edge"}},
			want:  http.Header{"Via": {"1.1 edge", "1.1 portcullis"}},
		},
		{
			name:  "remove deletes every value",
			rules: []HeaderRule{{Op: "remove", Name: "Cookie"}},
			in:    http.Header{"Cookie": {"a=1", "b=2"}, "Accept": {"*/*"}},
			want:  http.Header{"Accept": {"*/*"}},
		},
		{
			name: "every variable, alone and inside literals",
			rules: []HeaderRule{
				{Op: "set", Name: "X-App", Value: "${application}"},
				{Op: "set", Name: "X-Cert", Value: "subject=${client_cert_subject}; sha256=${client_cert_sha256}"},
				{Op: "set", Name: "X-Trace", Value: "${api}/${request_id} from ${client_ip}"},
				{Op: "set", Name: "X-Price", Value: "$5 {not a variable} $"},
			},
			in: http.Header{},
			want: http.Header{
				"X-App":   {"app-17"},
				"X-Cert":  {"subject=CN=billing,O=Example; sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
				"X-Trace": {"api-a/req-42 from 192.0.2.1"},
				"X-Price": {"$5 {not a variable} $"},
			},
		},
		{
			name:  "rules run in order",
			rules: []HeaderRule{{Op: "remove", Name: "X-A"}, {Op: "add", Name: "X-A", Value: "1"}, {Op: "add", Name: "X-A", Value: "2"}},
			in:    http.Header{"X-A": {"0"}},
			want:  http.Header{"X-A": {"1", "2"}},
		},
		{
			name:  "an empty variable removes a set header so a client cannot supply it",
			rules: []HeaderRule{{Op: "set", Name: "X-Client-Cert-Subject", Value: "${client_cert_subject}"}, {Op: "add", Name: "X-App", Value: "${application}"}},
			in:    http.Header{"X-Client-Cert-Subject": {"CN=admin"}},
			vars:  &Vars{},
			want:  http.Header{},
		},
		{
			name:  "nil vars are empty",
			rules: []HeaderRule{{Op: "set", Name: "X-App", Value: "app=${application}"}},
			in:    http.Header{},
			want:  http.Header{"X-App": {"app="}},
		},
		{
			name: "CR/LF in a variable is never injected",
			rules: []HeaderRule{
				{Op: "set", Name: "X-Subject", Value: "${client_cert_subject}"},
				{Op: "add", Name: "X-Trace", Value: "id=${request_id}"},
				{Op: "set", Name: "X-Ok", Value: "${api}"},
			},
			in: http.Header{"X-Subject": {"CN=spoofed"}, "X-Trace": {"edge"}},
			vars: &Vars{
				ClientCertSubject: "CN=x\r\nX-Admin: true",
				RequestID:         "a\nb",
				API:               "api-a",
			},
			want:    http.Header{"X-Trace": {"edge"}, "X-Ok": {"api-a"}},
			dropped: 2,
		},
		{
			name:    "NUL and DEL are refused too, tab and UTF-8 are fine",
			rules:   []HeaderRule{{Op: "set", Name: "X-A", Value: "${application}"}, {Op: "set", Name: "X-B", Value: "${client_ip}"}, {Op: "set", Name: "X-C", Value: "${api}"}},
			in:      http.Header{},
			vars:    &Vars{Application: "a\x00", ClientIP: "b\x7f", API: "ç\tx"},
			want:    http.Header{"X-C": {"ç\tx"}},
			dropped: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHeaderRules(tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			v := tt.vars
			if v == nil && !strings.HasPrefix(tt.name, "nil vars") {
				v = vars
			}
			h.Apply(tt.in, v)
			if got, want := headerString(tt.in), headerString(tt.want); got != want {
				t.Errorf("headers\n got %s\nwant %s", got, want)
			}
			if h.Dropped() != tt.dropped {
				t.Errorf("Dropped() = %d, want %d", h.Dropped(), tt.dropped)
			}
			for k, vs := range tt.in {
				for _, s := range vs {
					if strings.ContainsAny(s, "\r\n") {
						t.Errorf("%s carries a line break: %q", k, s)
					}
				}
			}
		})
	}
}

// headerString writes h in wire form, sorted, for comparison.
func headerString(h http.Header) string {
	var b strings.Builder
	_ = h.Write(&b)
	return b.String()
}

func TestNewHeaderRulesErrors(t *testing.T) {
	tests := []struct {
		name string
		rule HeaderRule
		want string
	}{
		{"unknown op", HeaderRule{Op: "append", Name: "X-A", Value: "1"}, `unknown op "append"`},
		{"unknown variable", HeaderRule{Op: "set", Name: "X-A", Value: "${tenant}"}, "unknown variable ${tenant}"},
		{"unterminated variable", HeaderRule{Op: "set", Name: "X-A", Value: "a${api"}, "unterminated"},
		{"bad name", HeaderRule{Op: "set", Name: "X A", Value: "1"}, `name "X A"`},
		{"empty name", HeaderRule{Op: "remove"}, `name ""`},
		{"literal CR/LF", HeaderRule{Op: "set", Name: "X-A", Value: "1\r\nX-B: 2"}, "control character"},
		{"framing header", HeaderRule{Op: "set", Name: "content-length", Value: "0"}, "framing"},
		{"host", HeaderRule{Op: "set", Name: "Host", Value: "internal"}, "hop-by-hop"},
		{"remove with a value", HeaderRule{Op: "remove", Name: "X-A", Value: "1"}, "no value"},
		{"set without a value", HeaderRule{Op: "set", Name: "X-A"}, "needs a value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHeaderRules([]HeaderRule{{Op: "remove", Name: "X-Ok"}, tt.rule})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "header rule 1") {
				t.Fatalf("NewHeaderRules() = %v, want an error for rule 1 containing %q", err, tt.want)
			}
		})
	}
}

// FuzzHeaderRulesApply feeds arbitrary variable values: whatever they hold,
// no header value may carry a control character other than tab.
func FuzzHeaderRulesApply(f *testing.F) {
	f.Add("app", "CN=x\r\nX-Evil: 1", "192.0.2.1")
	f.Add("", "", "")
	f.Add("a\x00b", "ç", "\t")
	h, err := NewHeaderRules([]HeaderRule{
		{Op: "set", Name: "X-App", Value: "${application}"},
		{Op: "add", Name: "X-Cert", Value: "s=${client_cert_subject};ip=${client_ip}"},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, app, subject, ip string) {
		hdr := http.Header{"X-App": {"spoofed"}}
		h.Apply(hdr, &Vars{Application: app, ClientCertSubject: subject, ClientIP: ip})
		for k, vs := range hdr {
			for _, v := range vs {
				if !validValue(v) {
					t.Fatalf("%s: %q", k, v)
				}
			}
		}
		if got := hdr.Get("X-App"); got != "" && got != app {
			t.Fatalf("X-App = %q, want the application %q or nothing", got, app)
		}
	})
}

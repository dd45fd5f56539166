package config_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/portcullis/portcullis/internal/config"
)

func TestFiles(t *testing.T) {
	base := filepath.Join(t.TempDir(), "etc")
	abs := filepath.Join(t.TempDir(), "abs")
	in := func(names ...string) []string {
		out := make([]string, len(names))
		for i, n := range names {
			if filepath.IsAbs(n) {
				out[i] = n
			} else {
				out[i] = filepath.Join(base, n)
			}
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "listener PEM pair, relative and absolute",
			yaml: `
listeners:
  - name: a
    tls:
      certificates:
        - { cert: gw.crt, key: ` + abs + `/gw.key }
`,
			want: in("gw.crt", abs+"/gw.key"),
		},
		{
			name: "encrypted key with password file and a keystore with passwords",
			yaml: `
listeners:
  - name: a
    tls:
      certificates:
        - { cert: a.pem, key: a.pem, key_password_file: secrets/a.pass }
        - keystore: { path: ks/b.p12, password_file: secrets/b.pass, key_password_file: secrets/b.keypass }
`,
			want: in("a.pem", "secrets/a.pass", "ks/b.p12", "secrets/b.pass", "secrets/b.keypass"),
		},
		{
			name: "admin certificates",
			yaml: `
admin:
  certificates:
    - { cert: admin.crt, key: admin.key }
`,
			want: in("admin.crt", "admin.key"),
		},
		{
			name: "trust stores: PEM bundles, truststores, CRL files but not CRL URLs",
			yaml: `
trust_stores:
  one: { pem: [ca1.pem, ./sub/../ca2.pem] }
  two:
    truststores: [{ path: partners.jks, password_file: partners.pass }]
    crl: { files: [a.crl, b.crl], urls: [ "http://crl.example/x.crl" ] }
`,
			want: in("ca1.pem", "ca2.pem", "partners.jks", "partners.pass", "a.crl", "b.crl"),
		},
		{
			name: "upstream client certificates and OAuth2 issuers",
			yaml: `
apis:
  - name: x
    upstream:
      tls:
        client_certificate: { cert: up.crt, key: up.key }
    oauth2:
      issuers:
        - issuer: https://idp.example
          client_certificate: { keystore: { path: idp.p12, password_env: P } }
          introspection: { url: https://idp.example/i, client_id: gw, client_secret_file: idp.secret }
        - builtin: true
  - name: y
    upstream:
      targets: [ http://127.0.0.1:1 ]
`,
			want: in("up.crt", "up.key", "idp.p12", "idp.secret"),
		},
		{
			name: "authorization server clients' keys and self-signed certificates",
			yaml: `
applications:
  - id: app1
    oauth2:
      public_keys: [app1.pub]
      self_signed_certs: app1-self.crt
  - id: app2
`,
			want: in("app1.pub", "app1-self.crt"),
		},
		{
			name: "duplicates collapse and the result is sorted",
			yaml: `
listeners:
  - name: a
    tls:
      certificates: [{ cert: z.pem, key: z.pem }]
  - name: b
    tls:
      certificates: [{ cert: ./z.pem, key: y.key }]
trust_stores:
  t: { pem: z.pem }
`,
			want: in("y.key", "z.pem"),
		},
		{
			name: "no files",
			yaml: `
log: { level: info }
`,
			want: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, probs := config.Parse("test.yaml", []byte(tc.yaml))
			if len(probs) > 0 {
				t.Fatalf("parse: %v", probs)
			}
			got := config.Files(d.File, base)
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Files:\n got  %q\n want %q", got, tc.want)
			}
			if !slices.IsSorted(got) {
				t.Errorf("not sorted: %q", got)
			}
		})
	}
}

func TestFilesRelativeBaseDirIsMadeAbsolute(t *testing.T) {
	d, probs := config.Parse("test.yaml", []byte("trust_stores:\n  t: { pem: ca.pem }\n"))
	if len(probs) > 0 {
		t.Fatalf("parse: %v", probs)
	}
	got := config.Files(d.File, "conf")
	if len(got) != 1 || !filepath.IsAbs(got[0]) || filepath.Base(filepath.Dir(got[0])) != "conf" {
		t.Fatalf("Files = %q, want one absolute path under conf/", got)
	}
}

package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const good = `
listeners:
  - name: public
    address: "127.0.0.1:8443"
    tls:
      certificates:
        - { cert: gw.crt, key: gw.key }
trust_stores:
  internal: { pem: ca.pem }
  partners:
    truststores: [{ path: partners.jks, password_env: TS_PASS }]
apis:
  - name: api-a
    match: { host: api.example.com, path_prefix: /a }
    upstream:
      targets: [ https://127.0.0.1:9443 ]
      tls:
        trust: internal
        server_name: api-a.internal
`

func TestGoodConfigHasNoProblemsAndGetsDefaults(t *testing.T) {
	d, probs := Parse("good.yaml", []byte(good))
	if len(probs) > 0 {
		t.Fatalf("unexpected problems:\n%v", probs)
	}
	f := WithDefaults(d.File)
	if ps := Validate(f); len(ps) > 0 {
		t.Fatalf("unexpected validation problems:\n%v", d.Locate(ps))
	}
	if !*f.APIs[0].Upstream.TLS.VerifyHostname {
		t.Error("verify_hostname must default to true")
	}
	if f.Listeners[0].TLS.MinVersion != TLS12 || f.APIs[0].Upstream.ConnectTimeout != 5*time.Second {
		t.Errorf("defaults not applied: %+v", f.Listeners[0].TLS)
	}
	if d.File.APIs[0].Upstream.TLS.VerifyHostname != nil {
		t.Error("WithDefaults modified its input")
	}
}

// TestProblems runs every testdata/*.yaml and compares the problems reported
// (decode plus validation, located) with the lines of the matching .problems
// file. Each case shows what a user sees from `portcullis validate`.
func TestProblems(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) == 0 {
		t.Fatal("no test cases in testdata")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(file, ".yaml") + ".problems")
			if err != nil {
				t.Fatal(err)
			}
			got := check(file)
			if strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
				t.Errorf("problems differ\n--- got\n%s\n--- want\n%s", got, want)
			}
		})
	}
}

func check(file string) string {
	_, _, probs := Check(file)
	var lines []string
	for _, p := range probs {
		lines = append(lines, p.String())
	}
	return strings.Join(lines, "\n")
}

func TestWarningsNameUnsafeOptions(t *testing.T) {
	d, probs := Parse("w.yaml", []byte(strings.Replace(good, "server_name: api-a.internal", "insecure_skip_verify: true", 1)))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	ws := Warnings(WithDefaults(d.File))
	if len(ws) != 1 || ws[0].Path != "apis[0].upstream.tls.insecure_skip_verify" {
		t.Fatalf("warnings = %v", ws)
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"512": 512, "64KiB": 64 << 10, "10MiB": 10 << 20, "1GB": 1e9, "-1": -1} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "ten", "-5", "1.5MiB"} {
		if _, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("listeners: [{name: x, limits: {max_body_bytes: 1MiB}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, probs := Parse("fuzz.yaml", data)
		if d == nil && len(probs) == 0 {
			t.Fatal("no document and no problem")
		}
		if d != nil {
			for _, p := range d.Locate(Validate(WithDefaults(d.File))) {
				if p.Message == "" {
					t.Fatalf("problem without message: %+v", p)
				}
			}
		}
	})
}

func TestGenerateGolden(t *testing.T) {
	if os.Getenv("UPDATE_GOLDEN") == "" {
		t.Skip("set UPDATE_GOLDEN=1 to rewrite testdata/*.problems")
	}
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		if err := os.WriteFile(strings.TrimSuffix(file, ".yaml")+".problems", []byte(check(file)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

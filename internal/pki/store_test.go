package pki

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/keymaterial"
)

// multiEntries is a store with two key entries sharing a chain and one
// trusted certificate, the shape a converted keytool store has.
func multiEntries(t *testing.T) []StoreEntry {
	t.Helper()
	f := shared(t)
	var out []StoreEntry
	for _, name := range []string{"Gateway", "admin"} {
		is, err := f.inter.Issue(IssueOptions{Name: strings.ToLower(name), Client: true})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, StoreEntry{Alias: name, Key: is.Key, Chain: append([]*x509.Certificate{is.Cert}, is.Chain...)})
	}
	return append(out, StoreEntry{Alias: "root", Chain: []*x509.Certificate{f.root.Cert}})
}

func TestWriteEntriesRoundTrip(t *testing.T) {
	entries := multiEntries(t)
	pw := []byte("changeit")
	for _, tc := range []struct {
		name   string
		file   string
		write  func(string, []StoreEntry, []byte) error
		format keymaterial.Format
		// aliases as read back: JKS lowercases them.
		aliases []string
	}{
		{"pkcs12", "multi.p12", WritePKCS12Entries, keymaterial.FormatPKCS12, []string{"Gateway", "admin", "root"}},
		{"jks", "multi.jks", WriteJKSEntries, keymaterial.FormatJKS, []string{"admin", "gateway", "root"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), tc.file)
			if err := tc.write(path, entries, pw); err != nil {
				t.Fatal(err)
			}
			if m := mode(t, path); m != 0o600 {
				t.Errorf("mode = %o, want 600 for a store with keys", m)
			}
			st, err := keymaterial.Inspect(path, pw)
			if err != nil {
				t.Fatalf("reading back: %v", err)
			}
			if st.Format != tc.format {
				t.Errorf("format = %s, want %s", st.Format, tc.format)
			}
			got := map[string]keymaterial.Entry{}
			for _, e := range st.Entries {
				got[e.Alias] = e
			}
			if len(got) != len(tc.aliases) {
				t.Fatalf("aliases = %v, want %v", st.Aliases(), tc.aliases)
			}
			for _, a := range tc.aliases {
				e, ok := got[a]
				if !ok {
					t.Fatalf("alias %q missing; have %v", a, st.Aliases())
				}
				switch a {
				case "root":
					if e.Kind != keymaterial.EntryTrustedCert {
						t.Errorf("root is %s, want a trusted certificate", e.Kind)
					}
				default:
					if e.Kind != keymaterial.EntryPrivateKey || !e.KeyMatches() || len(e.Chain) != 3 {
						t.Errorf("%s: kind %s, key matches %v, chain %d; want a key entry with a matching key and a 3-certificate chain",
							a, e.Kind, e.KeyMatches(), len(e.Chain))
					}
				}
			}
			if err := tc.write(path, entries, pw); !errors.Is(err, ErrExists) {
				t.Errorf("second write: %v, want ErrExists", err)
			}
		})
	}
}

func TestWriteEntriesRefusesBadInput(t *testing.T) {
	entries := multiEntries(t)
	dir := t.TempDir()
	pw := []byte("changeit")
	dup := append(append([]StoreEntry{}, entries...), StoreEntry{Alias: "GATEWAY", Chain: entries[2].Chain})
	swapped := []StoreEntry{{Alias: "x", Key: entries[0].Key, Chain: entries[1].Chain}}
	twoTrusted := []StoreEntry{{Alias: "x", Chain: entries[0].Chain[:2]}}
	for _, tc := range []struct {
		name    string
		entries []StoreEntry
		want    error
	}{
		{"no entries", nil, ErrInvalidOption},
		{"aliases differing only in case", dup, ErrInvalidOption},
		{"key that is not the leaf's", swapped, ErrKeyMismatch},
		{"trusted entry with two certificates", twoTrusted, ErrInvalidOption},
	} {
		for _, w := range []func(string, []StoreEntry, []byte) error{WritePKCS12Entries, WriteJKSEntries} {
			path := filepath.Join(dir, "out")
			if err := w(path, tc.entries, pw); !errors.Is(err, tc.want) {
				t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
			}
			if _, err := os.Stat(path); err == nil {
				t.Fatalf("%s: a file was written", tc.name)
			}
		}
	}
}

func TestKeytoolListsMultiEntryStores(t *testing.T) {
	keytool := needTool(t, "keytool")
	entries := multiEntries(t)
	pw := []byte("changeit")
	for _, tc := range []struct {
		name  string
		file  string
		write func(string, []StoreEntry, []byte) error
		want  []string
	}{
		{"pkcs12", "multi.p12", WritePKCS12Entries, []string{"Keystore type: PKCS12", "Your keystore contains 3 entries",
			"Alias name: gateway", "Alias name: admin", "Alias name: root", "trustedCertEntry", "Certificate chain length: 3"}},
		{"jks", "multi.jks", WriteJKSEntries, []string{"Keystore type: JKS", "Your keystore contains 3 entries",
			"Alias name: gateway", "Alias name: admin", "Alias name: root", "trustedCertEntry", "Certificate chain length: 3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), tc.file)
			if err := tc.write(path, entries, pw); err != nil {
				t.Fatal(err)
			}
			out := run(t, keytool, "-J-XX:TieredStopAtLevel=1", "-list", "-v", "-keystore", path, "-storepass", string(pw))
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("keytool -list -v lacks %q:\n%s", w, out)
				}
			}
			if n := strings.Count(out, "PrivateKeyEntry"); n != 2 {
				t.Errorf("keytool lists %d PrivateKeyEntry, want 2:\n%s", n, out)
			}
		})
	}
}

package keymaterial

import (
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/testpki"
)

// wantEntry is what a test expects of one listed entry.
type wantEntry struct {
	alias string
	kind  EntryKind
	chain int
	// key: "decrypted", "locked" (key entry whose key stayed encrypted) or
	// "" for certificate entries.
	key string
}

func describeEntries(s *Store) []wantEntry {
	var out []wantEntry
	for _, e := range s.Entries {
		w := wantEntry{alias: e.Alias, kind: e.Kind, chain: len(e.Chain)}
		if e.Kind == EntryPrivateKey {
			w.key = "locked"
			if e.Key != nil {
				w.key = "decrypted"
			}
		}
		out = append(out, w)
	}
	return out
}

func TestOpenStoreListsEveryEntry(t *testing.T) {
	root := testpki.NewCA(t, "Store Root")
	inter := root.Intermediate(t, "Store Issuing")
	leaf := inter.Issue(t, "store-leaf")
	other := root.Issue(t, "other-leaf")

	type storeCase struct {
		name string
		need func(*testing.T) *fixtures
		path func(t *testing.T, f *fixtures, dir string) string
		opts StoreOptions
		want []wantEntry
	}
	none := func(*testing.T) *fixtures { return nil }
	file := func(name string, data func() []byte) func(*testing.T, *fixtures, string) string {
		return func(t *testing.T, _ *fixtures, dir string) string {
			p := filepath.Join(dir, name)
			testpki.WriteFile(t, p, data())
			return p
		}
	}
	fixture := func(pick func(*fixtures) string) func(*testing.T, *fixtures, string) string {
		return func(_ *testing.T, f *fixtures, _ string) string { return pick(f) }
	}
	cases := []storeCase{
		{name: "pem key with its chain is one key entry", need: none,
			path: file("id.pem", func() []byte {
				return append(append(leaf.KeyPEM(), leaf.CertPEM()...), root.CertPEM()...)
			}),
			want: []wantEntry{{alias: "store-leaf", kind: EntryPrivateKey, chain: 3, key: "decrypted"}}},
		{name: "pem bundle lists each certificate as trusted", need: none,
			path: file("bundle.pem", func() []byte { return testpki.CertsPEM(root.Cert, inter.Cert) }),
			want: []wantEntry{
				{alias: "store-root", kind: EntryTrustedCert, chain: 1},
				{alias: "store-issuing", kind: EntryTrustedCert, chain: 1},
			}},
		{name: "pem chain file without a key is one certificate entry, not anchors", need: none,
			path: file("chain.pem", func() []byte { return append(leaf.CertPEM(), root.CertPEM()...) }),
			want: []wantEntry{{alias: "store-leaf", kind: EntryCertificate, chain: 3}}},
		{name: "pem key with a foreign certificate keeps the pairing visible", need: none,
			path: file("mismatch.pem", func() []byte { return append(leaf.KeyPEM(), other.CertPEM()...) }),
			want: []wantEntry{{alias: "other-leaf", kind: EntryPrivateKey, chain: 1, key: "decrypted"}}},
		{name: "jks keys with their own key password stay locked with the store password", need: needKeytool,
			path: fixture(func(f *fixtures) string { return f.jksKeys }), opts: StoreOptions{Password: []byte(storePass)},
			want: []wantEntry{
				{alias: "ec", kind: EntryPrivateKey, chain: 1, key: "locked"},
				{alias: "rsa", kind: EntryPrivateKey, chain: 1, key: "locked"},
			}},
		{name: "jks keys open with the key password", need: needKeytool,
			path: fixture(func(f *fixtures) string { return f.jksKeys }), opts: StoreOptions{Password: []byte(storePass), KeyPassword: []byte(keyPass)},
			want: []wantEntry{
				{alias: "ec", kind: EntryPrivateKey, chain: 1, key: "decrypted"},
				{alias: "rsa", kind: EntryPrivateKey, chain: 1, key: "decrypted"},
			}},
		{name: "keytool pkcs12 with a signed leaf and a trusted root", need: needKeytool,
			path: fixture(func(f *fixtures) string { return f.chainP12 }), opts: StoreOptions{Password: []byte(p12Pass)},
			want: []wantEntry{
				{alias: "leaf", kind: EntryPrivateKey, chain: 2, key: "decrypted"},
				{alias: "root", kind: EntryTrustedCert, chain: 1},
			}},
		{name: "keytool pkcs12 with two keys", need: needKeytool,
			path: fixture(func(f *fixtures) string { return f.twoKeys }), opts: StoreOptions{Password: []byte(p12Pass)},
			want: []wantEntry{
				{alias: "alpha", kind: EntryPrivateKey, chain: 1, key: "decrypted"},
				{alias: "beta", kind: EntryPrivateKey, chain: 1, key: "decrypted"},
			}},
		{name: "keytool jceks with a key and a trusted certificate", need: needKeytool,
			path: fixture(func(f *fixtures) string { return f.jceks }), opts: StoreOptions{Password: []byte(storePass)},
			want: []wantEntry{
				{alias: "ca", kind: EntryTrustedCert, chain: 1},
				{alias: "secret", kind: EntryPrivateKey, chain: 1, key: "decrypted"},
			}},
		{name: "openssl pkcs12 with a three-certificate chain", need: needOpenSSL,
			path: fixture(func(f *fixtures) string { return f.osslModern }), opts: StoreOptions{Password: []byte(p12Pass)},
			want: []wantEntry{{alias: "oss", kind: EntryPrivateKey, chain: 3, key: "decrypted"}}},
		{name: "openssl certificate-only pkcs12 names the unnamed certificate", need: needOpenSSL,
			path: fixture(func(f *fixtures) string { return f.osslTrust }), opts: StoreOptions{Password: []byte(p12Pass)},
			want: []wantEntry{{alias: "root-ca", kind: EntryTrustedCert, chain: 1}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.need(t)
			t.Parallel()
			st, err := OpenStore(tc.path(t, f, t.TempDir()), tc.opts)
			if err != nil {
				t.Fatalf("OpenStore: %v", err)
			}
			got := describeEntries(st)
			if len(got) != len(tc.want) {
				t.Fatalf("entries = %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("entry %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
			for _, e := range st.Entries {
				if e.Key != nil && e.KeyErr != nil {
					t.Errorf("entry %q has both a key and a key error", e.Alias)
				}
				if e.Kind == EntryPrivateKey && e.Key == nil && !errors.Is(e.KeyErr, ErrWrongPassword) {
					t.Errorf("locked entry %q: KeyErr = %v, want ErrWrongPassword", e.Alias, e.KeyErr)
				}
				checkNoSecrets(t, e.KeyErr)
			}
		})
	}
}

func TestOpenStoreErrors(t *testing.T) {
	cases := []struct {
		name      string
		path      func(f *fixtures, t *testing.T) string
		password  string
		wantErr   error
		wantInMsg []string
	}{
		{name: "wrong jks password", path: func(f *fixtures, _ *testing.T) string { return f.jksKeys }, password: wrongPass,
			wantErr: ErrWrongPassword, wantInMsg: []string{"(jks)"}},
		{name: "wrong pkcs12 password", path: func(f *fixtures, _ *testing.T) string { return f.twoKeys }, password: wrongPass,
			wantErr: ErrWrongPassword, wantInMsg: []string{"(pkcs12)"}},
		{name: "wrong jceks password", path: func(f *fixtures, _ *testing.T) string { return f.jceks }, password: wrongPass,
			wantErr: ErrWrongPassword, wantInMsg: []string{"(jceks)"}},
		{name: "jceks secret-key entry", path: func(f *fixtures, _ *testing.T) string { return f.jceksSecret }, password: storePass,
			wantErr: ErrUnsupportedFormat, wantInMsg: []string{`"hadoop.secret"`, "keytool -delete -alias hadoop.secret"}},
		{name: "truncated pkcs12 names the format", path: func(f *fixtures, t *testing.T) string { return truncated(t, f.twoKeys) }, password: p12Pass,
			wantErr: ErrCorrupt, wantInMsg: []string{"(pkcs12)"}},
		{name: "truncated jceks names the format", path: func(f *fixtures, t *testing.T) string { return truncated(t, f.jceks) }, password: storePass,
			wantErr: ErrCorrupt, wantInMsg: []string{"(jceks)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := needKeytool(t)
			t.Parallel()
			_, err := Inspect(tc.path(f, t), []byte(tc.password))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Inspect error = %v, want %v", err, tc.wantErr)
			}
			for _, frag := range tc.wantInMsg {
				if !strings.Contains(err.Error(), frag) {
					t.Errorf("error %q does not mention %q", err, frag)
				}
			}
			checkNoSecrets(t, err)
		})
	}
}

func TestStoreEntryListsAliasesWhenUnknown(t *testing.T) {
	f := needKeytool(t)
	st, err := Inspect(f.chainP12, []byte(p12Pass))
	if err != nil {
		t.Fatal(err)
	}
	if e, err := st.Entry("LEAF"); err != nil || e.Alias != "leaf" {
		t.Errorf("Entry(LEAF) = %v, %v; want the entry \"leaf\" (aliases are case-insensitive)", e, err)
	}
	_, err = st.Entry("nosuch")
	if !errors.Is(err, ErrAliasNotFound) {
		t.Fatalf("Entry(nosuch) error = %v, want ErrAliasNotFound", err)
	}
	for _, frag := range []string{`"leaf" (private-key)`, `"root" (trusted-cert)`} {
		if !strings.Contains(err.Error(), frag) {
			t.Errorf("error %q does not list %s", err, frag)
		}
	}
}

func TestCheckChain(t *testing.T) {
	root := testpki.NewCA(t, "Chain Root")
	inter := root.Intermediate(t, "Chain Issuing")
	leaf := inter.Issue(t, "chain-leaf")
	selfSigned := testpki.NewCA(t, "Lonely")
	cases := []struct {
		name         string
		chain        []*x509.Certificate
		wantLinked   int
		wantComplete bool
		wantMissing  string
		wantUnlinked int
	}{
		{name: "full chain reaches the root", chain: []*x509.Certificate{leaf.Cert, inter.Cert, root.Cert}, wantLinked: 3, wantComplete: true},
		{name: "self-signed certificate is complete on its own", chain: []*x509.Certificate{selfSigned.Cert}, wantLinked: 1, wantComplete: true},
		{name: "missing root names it", chain: []*x509.Certificate{leaf.Cert, inter.Cert}, wantLinked: 2, wantMissing: "CN=Chain Root"},
		{name: "missing intermediate names it and leaves the root unlinked", chain: []*x509.Certificate{leaf.Cert, root.Cert},
			wantLinked: 1, wantMissing: "CN=Chain Issuing", wantUnlinked: 1},
		{name: "empty chain", wantLinked: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := CheckChain(tc.chain)
			if s.Linked != tc.wantLinked || s.Complete != tc.wantComplete || len(s.Unlinked) != tc.wantUnlinked {
				t.Errorf("CheckChain = linked %d complete %v unlinked %d; want %d %v %d",
					s.Linked, s.Complete, len(s.Unlinked), tc.wantLinked, tc.wantComplete, tc.wantUnlinked)
			}
			if !strings.Contains(s.MissingIssuer, tc.wantMissing) || (tc.wantMissing == "") != (s.MissingIssuer == "" || tc.chain == nil) {
				t.Errorf("MissingIssuer = %q, want %q", s.MissingIssuer, tc.wantMissing)
			}
		})
	}
}

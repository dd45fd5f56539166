package keymaterial

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/testpki"
)

type identityCase struct {
	name string
	// src builds the source from the shared fixtures (and may write files
	// into dir).
	src        func(t *testing.T, f *fixtures, dir string) IdentitySource
	wantErr    error
	wantAlias  string
	wantFormat Format
	// wantChain is the expected number of certificates, leaf included.
	wantChain int
	// wantKey is "rsa" or "ec" when the key type matters.
	wantKey string
	// wantInMsg are fragments the error message must contain.
	wantInMsg []string
}

func runIdentityCases(t *testing.T, need func(*testing.T) *fixtures, cases []identityCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := need(t)
			t.Parallel()
			id, err := LoadIdentity(tc.src(t, f, t.TempDir()), testNow)
			checkNoSecrets(t, err)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("LoadIdentity error = %v, want %v", err, tc.wantErr)
				}
				for _, frag := range tc.wantInMsg {
					if !strings.Contains(err.Error(), frag) {
						t.Errorf("error %q does not mention %q", err, frag)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadIdentity: %v", err)
			}
			checkIdentity(t, id, tc)
		})
	}
}

func checkIdentity(t *testing.T, id *Identity, tc identityCase) {
	t.Helper()
	c := id.Certificate
	if c.Leaf == nil || c.PrivateKey == nil || len(c.Certificate) == 0 {
		t.Fatalf("incomplete tls.Certificate: leaf %v, key %T, %d certs", c.Leaf != nil, c.PrivateKey, len(c.Certificate))
	}
	if string(c.Certificate[0]) != string(c.Leaf.Raw) {
		t.Error("Certificate[0] is not the leaf")
	}
	if !keyMatches(c.PrivateKey, c.Leaf) {
		t.Error("private key does not match the leaf")
	}
	if got := len(c.Certificate); tc.wantChain != 0 && got != tc.wantChain {
		t.Errorf("chain length = %d, want %d", got, tc.wantChain)
	}
	seen := map[string]bool{}
	for _, der := range c.Certificate {
		if seen[string(der)] {
			t.Error("chain holds a duplicate certificate")
		}
		seen[string(der)] = true
	}
	if tc.wantAlias != "" && id.Alias != tc.wantAlias {
		t.Errorf("Alias = %q, want %q", id.Alias, tc.wantAlias)
	}
	if tc.wantFormat != "" && id.Format != tc.wantFormat {
		t.Errorf("Format = %q, want %q", id.Format, tc.wantFormat)
	}
	switch tc.wantKey {
	case "rsa":
		if _, ok := c.PrivateKey.(*rsa.PrivateKey); !ok {
			t.Errorf("key is %T, want RSA", c.PrivateKey)
		}
	case "ec":
		if _, ok := c.PrivateKey.(*ecdsa.PrivateKey); !ok {
			t.Errorf("key is %T, want ECDSA", c.PrivateKey)
		}
	}
	for _, s := range allSecrets {
		if strings.Contains(id.Source, s) {
			t.Errorf("Source %q contains a password", id.Source)
		}
	}
}

func TestLoadIdentityKeytool(t *testing.T) {
	store := func(path func(*fixtures) string, alias, pass, keyPass string) func(*testing.T, *fixtures, string) IdentitySource {
		return func(_ *testing.T, f *fixtures, _ string) IdentitySource {
			src := IdentitySource{Keystore: path(f), Alias: alias, Password: []byte(pass)}
			if keyPass != "" {
				src.KeyPassword = []byte(keyPass)
			}
			return src
		}
	}
	jks := func(f *fixtures) string { return f.jksKeys }
	def := func(f *fixtures) string { return f.defaultP12 }
	two := func(f *fixtures) string { return f.twoKeys }
	chain := func(f *fixtures) string { return f.chainP12 }
	runIdentityCases(t, needKeytool, []identityCase{
		{name: "jks rsa key with its own key password", src: store(jks, "rsa", storePass, keyPass),
			wantAlias: "rsa", wantFormat: FormatJKS, wantChain: 1, wantKey: "rsa"},
		{name: "jks ec key, alias matched case-insensitively", src: store(jks, "EC", storePass, keyPass),
			wantAlias: "ec", wantFormat: FormatJKS, wantChain: 1, wantKey: "ec"},
		{name: "jks with two keys and no alias needs one", src: store(jks, "", storePass, keyPass),
			wantErr: ErrAliasRequired, wantInMsg: []string{`"ec"`, `"rsa"`}},
		{name: "jks key password defaults to the store password and fails", src: store(jks, "rsa", storePass, ""),
			wantErr: ErrWrongPassword, wantInMsg: []string{`"rsa"`}},
		{name: "jks wrong store password", src: store(jks, "rsa", wrongPass, keyPass),
			wantErr: ErrWrongPassword, wantInMsg: []string{"keys.jks", "jks"}},
		{name: "jks missing alias lists the aliases", src: store(jks, "nope", storePass, keyPass),
			wantErr: ErrAliasNotFound, wantInMsg: []string{`"nope"`, `"ec"`, `"rsa"`}},
		{name: "keytool default pkcs12 named .jks is read as pkcs12", src: store(def, "", p12Pass, ""),
			wantAlias: "server", wantFormat: FormatPKCS12, wantChain: 1, wantKey: "ec"},
		{name: "pkcs12 wrong password", src: store(def, "", wrongPass, ""),
			wantErr: ErrWrongPassword, wantInMsg: []string{"server.jks", "pkcs12"}},
		{name: "pkcs12 with two keys selects alpha", src: store(two, "alpha", p12Pass, ""),
			wantAlias: "alpha", wantFormat: FormatPKCS12, wantChain: 1},
		{name: "pkcs12 with two keys selects beta", src: store(two, "beta", p12Pass, ""),
			wantAlias: "beta", wantFormat: FormatPKCS12, wantChain: 1},
		{name: "pkcs12 with two keys and a missing alias lists both", src: store(two, "gamma", p12Pass, ""),
			wantErr: ErrAliasNotFound, wantInMsg: []string{`"gamma"`, `"alpha"`, `"beta"`}},
		{name: "pkcs12 with two keys and no alias", src: store(two, "", p12Pass, ""),
			wantErr: ErrAliasRequired, wantInMsg: []string{`"alpha"`, `"beta"`}},
		{name: "ca-signed chain has leaf and ca, not the trusted duplicate", src: store(chain, "leaf", p12Pass, ""),
			wantAlias: "leaf", wantFormat: FormatPKCS12, wantChain: 2},
		{name: "alias of a trusted entry is not a key", src: store(chain, "root", p12Pass, ""),
			wantErr: ErrNoPrivateKey, wantInMsg: []string{`"root"`, "trusted"}},
		{name: "jks truststore as identity", src: func(_ *testing.T, f *fixtures, _ string) IdentitySource {
			return IdentitySource{Keystore: f.jksTrust, Password: []byte(storePass)}
		}, wantErr: ErrNoPrivateKey, wantInMsg: []string{"truststore", `"ca"`}},
		{name: "pkcs12 truststore as identity", src: store(func(f *fixtures) string { return f.p12Trust }, "", p12Pass, ""),
			wantErr: ErrNoPrivateKey, wantInMsg: []string{"truststore"}},
		{name: "jceks key entry loads beside a trusted entry", src: store(func(f *fixtures) string { return f.jceks }, "", storePass, ""),
			wantAlias: "secret", wantFormat: FormatJCEKS, wantChain: 1, wantKey: "ec"},
		{name: "jceks with the wrong password", src: store(func(f *fixtures) string { return f.jceks }, "", wrongPass, ""),
			wantErr: ErrWrongPassword, wantInMsg: []string{"(jceks)", "integrity"}},
		{name: "jceks with a secret-key entry is refused naming it, with a way out", src: store(func(f *fixtures) string { return f.jceksSecret }, "", storePass, ""),
			wantErr: ErrUnsupportedFormat, wantInMsg: []string{`"hadoop.secret"`, "secret-key entry", "-importkeystore", "-srcalias", "-deststoretype PKCS12"}},
		{name: "truncated jks is corrupt", src: func(t *testing.T, f *fixtures, _ string) IdentitySource {
			return IdentitySource{Keystore: truncated(t, f.jksKeys), Password: []byte(storePass)}
		}, wantErr: ErrCorrupt, wantInMsg: []string{"(jks)"}},
		{name: "truncated pkcs12 is corrupt", src: func(t *testing.T, f *fixtures, _ string) IdentitySource {
			return IdentitySource{Keystore: truncated(t, f.twoKeys), Password: []byte(p12Pass)}
		}, wantErr: ErrCorrupt, wantInMsg: []string{"(pkcs12)"}},
	})
}

func TestLoadIdentityKeytoolChainOrder(t *testing.T) {
	f := needKeytool(t)
	id, err := LoadIdentity(IdentitySource{Keystore: f.chainP12, Password: []byte(p12Pass), Alias: "leaf"}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pemCertificates(mustRead(t, f.caCertPEM), "ca")
	if err != nil || len(ca) != 1 {
		t.Fatalf("reading ca: %v", err)
	}
	if got := id.Certificate.Certificate; len(got) != 2 || string(got[1]) != string(ca[0].Raw) {
		t.Fatalf("chain[1] is not the keytool ca (chain length %d)", len(got))
	}
	if err := id.Certificate.Leaf.CheckSignatureFrom(ca[0]); err != nil {
		t.Errorf("leaf not signed by the ca: %v", err)
	}
}

func TestLoadIdentityOpenSSL(t *testing.T) {
	pemKey := func(key func(*fixtures) string, pass string) func(*testing.T, *fixtures, string) IdentitySource {
		return func(_ *testing.T, f *fixtures, _ string) IdentitySource {
			return IdentitySource{CertFile: f.osslCert, KeyFile: key(f), Password: []byte(pass)}
		}
	}
	p12 := func(path func(*fixtures) string, alias, pass string) func(*testing.T, *fixtures, string) IdentitySource {
		return func(_ *testing.T, f *fixtures, _ string) IdentitySource {
			return IdentitySource{Keystore: path(f), Alias: alias, Password: []byte(pass)}
		}
	}
	modern := func(f *fixtures) string { return f.osslModern }
	legacy := func(f *fixtures) string { return f.osslLegacy }
	runIdentityCases(t, needOpenSSL, []identityCase{
		{name: "modern pkcs12 with leaf, intermediate and root", src: p12(modern, "", p12Pass),
			wantAlias: "oss", wantFormat: FormatPKCS12, wantChain: 3},
		{name: "modern pkcs12 alias selection", src: p12(modern, "OSS", p12Pass),
			wantAlias: "oss", wantChain: 3},
		{name: "legacy pkcs12 falls back for rc2 certificates, alias kept", src: p12(legacy, "oss", p12Pass),
			wantAlias: "oss", wantFormat: FormatPKCS12, wantChain: 3},
		{name: "legacy pkcs12 wrong password", src: p12(legacy, "", wrongPass),
			wantErr: ErrWrongPassword},
		{name: "legacy pkcs12 missing alias", src: p12(legacy, "other", p12Pass),
			wantErr: ErrAliasNotFound, wantInMsg: []string{`"oss"`}},
		{name: "pkcs12 of certificates only", src: p12(func(f *fixtures) string { return f.osslTrust }, "", p12Pass),
			wantErr: ErrNoPrivateKey},
		{name: "pkcs8 pbes2 aes-256-cbc", src: pemKey(func(f *fixtures) string { return f.pkcs8AES256 }, pemPass),
			wantFormat: FormatPEM, wantChain: 2},
		{name: "pkcs8 pbes2 des3", src: pemKey(func(f *fixtures) string { return f.pkcs8DES3 }, pemPass),
			wantFormat: FormatPEM, wantChain: 2},
		{name: "pkcs8 pbes2 aes-128-cbc with hmac-sha1", src: pemKey(func(f *fixtures) string { return f.pkcs8AES128S1 }, pemPass),
			wantChain: 2},
		{name: "pkcs8 pkcs12-pbe 3des", src: pemKey(func(f *fixtures) string { return f.pkcs8PBE3DES }, pemPass),
			wantChain: 2},
		{name: "encrypted pkcs8 wrong password", src: pemKey(func(f *fixtures) string { return f.pkcs8AES256 }, wrongPass),
			wantErr: ErrWrongPassword, wantInMsg: []string{"key-aes256.pem"}},
		{name: "encrypted pkcs8 without password", src: pemKey(func(f *fixtures) string { return f.pkcs8DES3 }, ""),
			wantErr: ErrWrongPassword},
	})
}

func TestLoadIdentityPEM(t *testing.T) {
	ca := testpki.NewCA(t, "PEM Root")
	inter := ca.Intermediate(t, "PEM Issuing")
	good := inter.Issue(t, "good", testpki.RSA(2048))
	expired := ca.Issue(t, "expired", testpki.Expired())
	future := ca.Issue(t, "future", testpki.NotYetValid())
	other := ca.Issue(t, "other")

	write := func(name string, data ...[]byte) func(*testing.T, *fixtures, string) string {
		return func(t *testing.T, _ *fixtures, dir string) string {
			p := filepath.Join(dir, name)
			var all []byte
			for _, d := range data {
				all = append(all, d...)
			}
			testpki.WriteFile(t, p, all)
			return p
		}
	}
	pair := func(cert, key func(*testing.T, *fixtures, string) string) func(*testing.T, *fixtures, string) IdentitySource {
		return func(t *testing.T, f *fixtures, dir string) IdentitySource {
			return IdentitySource{CertFile: cert(t, f, dir), KeyFile: key(t, f, dir)}
		}
	}
	// The chain deliberately out of order and with a duplicate: root,
	// leaf, intermediate, root.
	messy := testpki.CertsPEM(ca.Cert, good.Cert, inter.Cert, ca.Cert)
	runIdentityCases(t, func(*testing.T) *fixtures { return nil }, []identityCase{
		{name: "pkcs8 key with chain", src: pair(write("c.pem", good.CertPEM()), write("k.pem", good.KeyPEM())),
			wantFormat: FormatPEM, wantChain: 2, wantKey: "rsa"},
		{name: "combined file, key first, chain messy and duplicated",
			src: func(t *testing.T, f *fixtures, dir string) IdentitySource {
				p := write("all.pem", good.KeyPEM(), messy)(t, f, dir)
				return IdentitySource{CertFile: p, KeyFile: p}
			}, wantChain: 3},
		{name: "combined file given as keystore",
			src: func(t *testing.T, f *fixtures, dir string) IdentitySource {
				return IdentitySource{Keystore: write("all.pem", messy, good.KeyPEM())(t, f, dir)}
			}, wantFormat: FormatPEM, wantChain: 3},
		{name: "pkcs1 key", src: pair(write("c.pem", good.CertPEM()), write("k.pem", pkcs1PEM(t, good))), wantChain: 2},
		{name: "sec1 key after ec parameters", src: pair(write("c.pem", other.CertPEM()), write("k.pem", ecParamsPEM, sec1PEM(t, other))), wantChain: 1},
		{name: "expired certificate", src: pair(write("c.pem", expired.CertPEM()), write("k.pem", expired.KeyPEM())),
			wantErr: ErrExpired, wantInMsg: []string{"expired on", expired.Cert.NotAfter.UTC().Format("2006-01-02")}},
		{name: "not yet valid certificate", src: pair(write("c.pem", future.CertPEM()), write("k.pem", future.KeyPEM())),
			wantErr: ErrNotYetValid, wantInMsg: []string{"not valid before"}},
		{name: "key of another certificate", src: pair(write("c.pem", good.CertPEM()), write("k.pem", other.KeyPEM())),
			wantErr: ErrKeyMismatch, wantInMsg: []string{"CN=good"}},
		{name: "key file without a key", src: pair(write("c.pem", good.CertPEM()), write("k.pem", good.CertPEM())),
			wantErr: ErrNoPrivateKey, wantInMsg: []string{"k.pem", "CERTIFICATE"}},
		{name: "certificate file without certificates", src: pair(write("c.pem", good.KeyPEM()), write("k.pem", good.KeyPEM())),
			wantErr: ErrNoCertificates, wantInMsg: []string{"c.pem"}},
		{name: "damaged certificate block", src: pair(write("c.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")), write("k.pem", good.KeyPEM())),
			wantErr: ErrCorrupt, wantInMsg: []string{"c.pem"}},
		{name: "legacy pem encryption is refused with a hint", src: pair(write("c.pem", good.CertPEM()), write("k.pem", []byte(legacyEncryptedPEM))),
			wantErr: ErrUnsupportedFormat, wantInMsg: []string{"openssl pkcs8 -topk8"}},
		{name: "garbage keystore", src: func(t *testing.T, f *fixtures, dir string) IdentitySource {
			return IdentitySource{Keystore: write("x.jks", []byte("hello, not a keystore"))(t, f, dir)}
		}, wantErr: ErrUnsupportedFormat, wantInMsg: []string{"unknown"}},
		{name: "cert without key file", src: func(t *testing.T, f *fixtures, dir string) IdentitySource {
			return IdentitySource{CertFile: write("c.pem", good.CertPEM())(t, f, dir)}
		}, wantErr: ErrInvalidSource},
		{name: "both keystore and files", src: func(*testing.T, *fixtures, string) IdentitySource {
			return IdentitySource{Keystore: "a.p12", CertFile: "c.pem", KeyFile: "k.pem"}
		}, wantErr: ErrInvalidSource},
		{name: "nothing given", src: func(*testing.T, *fixtures, string) IdentitySource { return IdentitySource{} },
			wantErr: ErrInvalidSource},
	})
}

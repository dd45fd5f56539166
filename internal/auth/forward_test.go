package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/testpki"
)

func TestStripForwardedCertHeaders(t *testing.T) {
	h := http.Header{
		"Client-Cert":             {"forged"},
		"client-cert":             {"forged lower"},
		"CLIENT-CERT-CHAIN":       {"forged chain"},
		"X-Forwarded-Client-Cert": {"By=spoof"},
		"X_Forwarded_Client_Cert": {"underscore spoof"},
		"x-forwarded-client-CERT": {"mixed"},
		"X-Ssl-Client-Cert":       {"configured extra"},
		"x_ssl_client_cert":       {"configured extra, underscores"},
		"X-Forwarded-For":         {"192.0.2.1"},
		"Client-Certificate":      {"a different header"},
		"Client-Cert-Chains":      {"a different header"},
		"Authorization":           {"Bearer x"},
	}
	StripForwardedCertHeaders(h, "X-SSL-Client-Cert")
	var kept []string
	for k := range h {
		kept = append(kept, k)
	}
	slices.Sort(kept)
	want := []string{"Authorization", "Client-Cert-Chains", "Client-Certificate", "X-Forwarded-For"}
	if !slices.Equal(kept, want) {
		t.Errorf("kept %q, want %q", kept, want)
	}
}

func TestRFC9440RoundTrip(t *testing.T) {
	root := testpki.NewCA(t, "Root")
	mid := root.Intermediate(t, "Issuing")
	leaf := mid.Issue(t, "client", testpki.Client())
	verified := []*x509.Certificate{leaf.Cert, mid.Cert, root.Cert}

	h := http.Header{"Client-Cert": {":Zm9yZ2Vk:"}, "Client-Cert-Chain": {":Zm9yZ2Vk:"}}
	SetRFC9440(h, verified)
	if len(h.Values("Client-Cert")) != 1 || len(h.Values("Client-Cert-Chain")) != 1 {
		t.Fatalf("forged values not replaced: %v", h)
	}
	if want := ":" + base64.StdEncoding.EncodeToString(leaf.Cert.Raw) + ":"; h.Get("Client-Cert") != want {
		t.Errorf("Client-Cert = %q, want %q", h.Get("Client-Cert"), want)
	}
	got, err := ParseRFC9440(h.Get("Client-Cert"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Raw, leaf.Cert.Raw) {
		t.Error("Client-Cert does not decode to the leaf's DER")
	}
	chain, err := ParseRFC9440Chain(h.Get("Client-Cert-Chain"))
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 2 || !bytes.Equal(chain[0].Raw, mid.Cert.Raw) || !bytes.Equal(chain[1].Raw, root.Cert.Raw) {
		t.Errorf("Client-Cert-Chain holds %d certificates; want the intermediate then the anchor, without the leaf", len(chain))
	}
	if want := ":" + base64.StdEncoding.EncodeToString(mid.Cert.Raw) + ":, :" + base64.StdEncoding.EncodeToString(root.Cert.Raw) + ":"; h.Get("Client-Cert-Chain") != want {
		t.Errorf("Client-Cert-Chain is not a comma-separated structured-field list of byte sequences")
	}

	SetRFC9440(h, verified[:1])
	if h.Get("Client-Cert") == "" || h.Values("Client-Cert-Chain") != nil {
		t.Errorf("a lone leaf must send Client-Cert and no Client-Cert-Chain: %v", h)
	}
	SetRFC9440(h, nil)
	if len(h) != 0 {
		t.Errorf("an empty chain must remove both headers: %v", h)
	}
}

func TestParseRFC9440IsStrict(t *testing.T) {
	ca := testpki.NewCA(t, "CA")
	der := ca.Issue(t, "c").Cert.Raw
	b64 := base64.StdEncoding.EncodeToString(der)
	if _, err := ParseRFC9440("  :" + b64 + ":  "); err != nil {
		t.Errorf("surrounding spaces are allowed by RFC 8941: %v", err)
	}
	bad := map[string]string{
		"empty":                    "",
		"no colons":                b64,
		"one colon":                ":" + b64,
		"empty byte sequence":      "::",
		"unpadded base64":          ":" + strings.TrimRight(base64.RawStdEncoding.EncodeToString(der), "=") + "x:",
		"base64url alphabet":       ":" + base64.URLEncoding.EncodeToString(der) + ":",
		"line break inside":        ":" + b64[:10] + "\n" + b64[10:] + ":",
		"space inside":             ":" + b64[:10] + " " + b64[10:] + ":",
		"parameters":               ":" + b64 + ":;v=1",
		"two items":                ":" + b64 + ":, :" + b64 + ":",
		"not a certificate":        ":" + base64.StdEncoding.EncodeToString([]byte("hello")) + ":",
		"trailing bytes after DER": ":" + base64.StdEncoding.EncodeToString(append(slices.Clone(der), 0)) + ":",
	}
	for name, v := range bad {
		if _, err := ParseRFC9440(v); !errors.Is(err, ErrBadRFC9440) {
			t.Errorf("%s: ParseRFC9440 error %v, want ErrBadRFC9440", name, err)
		}
	}
	if _, err := ParseRFC9440Chain(":" + b64 + ":, garbage"); !errors.Is(err, ErrBadRFC9440) {
		t.Errorf("a bad chain item was accepted: %v", err)
	}
}

func TestSetXFCC(t *testing.T) {
	ca := testpki.NewCA(t, "CA")
	leaf := ca.Issue(t, `svc "a",b`, testpki.Client(),
		testpki.URI("spiffe://example.org/ns/a"), testpki.URI("https://x.example/p;v=1"),
		testpki.DNS("a.example", "b.example"))

	sum := sha256.Sum256(leaf.Cert.Raw)
	pemURL := strings.NewReplacer("\n", "%0A", " ", "%20", "+", "%2B", "/", "%2F", "=", "%3D").Replace(string(testpki.CertsPEM(leaf.Cert)))
	// pkix.Name.String writes CN=svc \"a\"\,b; inside a quoted string each
	// backslash and quote gains a backslash.
	want := "Hash=" + hex.EncodeToString(sum[:]) +
		`;Cert="` + pemURL + `"` +
		`;Subject="CN=svc \\\"a\\\"\\,b,O=Portcullis tests"` +
		`;URI=spiffe://example.org/ns/a` +
		`;URI="https://x.example/p;v=1"` +
		`;DNS=a.example;DNS=b.example`

	h := http.Header{"X-Forwarded-Client-Cert": {"By=spoof;Hash=00"}}
	SetXFCC(h, []*x509.Certificate{leaf.Cert, ca.Cert})
	if got := h.Values("X-Forwarded-Client-Cert"); len(got) != 1 || got[0] != want {
		t.Errorf("X-Forwarded-Client-Cert =\n%q\nwant\n%q", got, want)
	}
	SetXFCC(h, nil)
	if len(h) != 0 {
		t.Errorf("an empty chain must remove the header: %v", h)
	}
}

func TestThumbprint(t *testing.T) {
	// SHA-256("abc") from FIPS 180-2, base64url without padding.
	if got := Thumbprint(&x509.Certificate{Raw: []byte("abc")}); got != "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0" {
		t.Errorf("Thumbprint = %q", got)
	}
	c := testpki.NewCA(t, "CA").Cert
	tp := Thumbprint(c)
	sum := sha256.Sum256(c.Raw)
	raw, err := base64.RawURLEncoding.DecodeString(tp)
	if err != nil || !bytes.Equal(raw, sum[:]) || strings.ContainsAny(tp, "=+/") || len(tp) != 43 {
		t.Errorf("Thumbprint %q is not unpadded base64url of the DER's SHA-256", tp)
	}
}

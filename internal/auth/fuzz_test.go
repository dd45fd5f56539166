package auth

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/testpki"
)

// FuzzParseRFC9440 checks that any Client-Cert value the parser accepts
// survives SetRFC9440 unchanged: parse → set → parse yields the same DER,
// and the value set is exactly the accepted input without surrounding
// spaces (the strict parser admits one spelling per certificate). No input
// may panic, the chain parser included.
func FuzzParseRFC9440(f *testing.F) {
	ca := testpki.NewCA(f, "Fuzz CA")
	leaf := ca.Issue(f, "fuzz", testpki.Client(), testpki.DNS("a.example"))
	good := ":" + base64.StdEncoding.EncodeToString(leaf.Cert.Raw) + ":"
	for _, s := range []string{good, " " + good + " ", good + ", " + good, "::", ":AAAA:", ":" + base64.StdEncoding.EncodeToString(ca.Cert.Raw) + ":;a=1", "", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		_, _ = ParseRFC9440Chain(v)
		c, err := ParseRFC9440(v)
		if err != nil {
			return
		}
		h := http.Header{}
		SetRFC9440(h, []*x509.Certificate{c})
		set := h.Get("Client-Cert")
		if set != strings.Trim(v, " ") {
			t.Errorf("accepted %q but writes %q", v, set)
		}
		again, err := ParseRFC9440(set)
		if err != nil {
			t.Fatalf("cannot parse our own value %q: %v", set, err)
		}
		if !bytes.Equal(again.Raw, c.Raw) {
			t.Error("DER changed in the round trip")
		}
	})
}

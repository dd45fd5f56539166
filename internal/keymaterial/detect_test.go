package keymaterial

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/testpki"
)

func TestDetect(t *testing.T) {
	ca := testpki.NewCA(t, "Detect CA")
	tests := []struct {
		name string
		data []byte
		want Format
	}{
		{"jks magic", []byte{0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2}, FormatJKS},
		{"jceks magic", []byte{0xce, 0xce, 0xce, 0xce, 0, 0, 0, 2}, FormatJCEKS},
		{"pem certificate", ca.CertPEM(), FormatPEM},
		{"pem after openssl bag attributes", append([]byte("Bag Attributes\n    friendlyName: x\n"), ca.CertPEM()...), FormatPEM},
		{"der certificate is not a store", ca.Cert.Raw, FormatUnknown},
		{"pfx header, truncated", []byte{0x30, 0x82, 0x0a, 0x00, 0x02, 0x01, 0x03, 0x30, 0x82, 0x09, 0x00,
			0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01}, FormatPKCS12},
		{"pfx version 2 is not pkcs12", []byte{0x30, 0x82, 0x0a, 0x00, 0x02, 0x01, 0x02, 0x30, 0x82, 0x09, 0x00,
			0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01}, FormatUnknown},
		{"begin marker without a block", []byte("-----BEGIN nothing"), FormatUnknown},
		{"empty", nil, FormatUnknown},
		{"text", []byte("password"), FormatUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Detect(tc.data); got != tc.want {
				t.Errorf("Detect = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDetectKeytoolStores checks detection on real files, whatever their
// names say.
func TestDetectKeytoolStores(t *testing.T) {
	f := needKeytool(t)
	for path, want := range map[string]Format{
		f.jksKeys: FormatJKS, f.defaultP12: FormatPKCS12, f.jceks: FormatJCEKS, f.jksTrust: FormatJKS,
		f.p12Trust: FormatPKCS12, f.caCertPEM: FormatPEM,
	} {
		if got := Detect(mustRead(t, path)); got != want {
			t.Errorf("Detect(%s) = %q, want %q", filepath.Base(path), got, want)
		}
	}
}

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("KEYMATERIAL_TEST_SECRET", "from-env")
	t.Setenv("KEYMATERIAL_TEST_EMPTY", "")
	tests := []struct {
		name    string
		ref     SecretRef
		want    []byte
		wantErr error
		wantMsg string
	}{
		{name: "empty ref", ref: SecretRef{}, want: nil},
		{name: "env", ref: SecretRef{Env: "KEYMATERIAL_TEST_SECRET"}, want: []byte("from-env")},
		{name: "empty env is an empty secret", ref: SecretRef{Env: "KEYMATERIAL_TEST_EMPTY"}, want: []byte{}},
		{name: "unset env", ref: SecretRef{Env: "KEYMATERIAL_TEST_UNSET"}, wantErr: ErrSecretUnavailable, wantMsg: "KEYMATERIAL_TEST_UNSET"},
		{name: "file with newline", ref: SecretRef{File: file("nl", "s3cret\n")}, want: []byte("s3cret")},
		{name: "file with crlf", ref: SecretRef{File: file("crlf", "s3cret\r\n")}, want: []byte("s3cret")},
		{name: "only one newline trimmed", ref: SecretRef{File: file("two", "s3cret\n\n")}, want: []byte("s3cret\n")},
		{name: "trailing spaces kept", ref: SecretRef{File: file("sp", "s3cret \n")}, want: []byte("s3cret ")},
		{name: "missing file", ref: SecretRef{File: filepath.Join(dir, "missing")}, wantErr: os.ErrNotExist, wantMsg: "missing"},
		{name: "both set", ref: SecretRef{Env: "KEYMATERIAL_TEST_SECRET", File: "x"}, wantErr: ErrInvalidSource},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadSecret(tc.ref)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ReadSecret error = %v, want %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("error %q does not name %q", err, tc.wantMsg)
				}
				if strings.Contains(err.Error(), "from-env") {
					t.Errorf("error %q contains the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(tc.want) || (got == nil) != (tc.want == nil) {
				t.Errorf("ReadSecret = %q (nil %v), want %q (nil %v)", got, got == nil, tc.want, tc.want == nil)
			}
		})
	}
}

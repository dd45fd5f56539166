package cli

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/portcullis/portcullis/internal/pki"
)

type pkiCmd struct {
	InitCA pkiInitCACmd `cmd:"" name:"init-ca" help:"Create a root CA, or an intermediate CA with --intermediate-of."`
	Issue  pkiIssueCmd  `cmd:"" help:"Issue a key and certificate signed by a CA, as PEM, PKCS#12 or JKS."`
	CSR    pkiCSRCmd    `cmd:"" name:"csr" help:"Create a key and a certificate signing request."`
	Sign   pkiSignCmd   `cmd:"" help:"Sign a CSR (from keytool, OpenSSL or 'pki csr') with a CA."`
	CRL    pkiCRLCmd    `cmd:"" name:"crl" help:"Revoke certificates and write the CA's CRL."`
}

// caKeyFlags open a CA whose key may be encrypted.
type caKeyFlags struct {
	CAPasswordEnv  string `help:"Environment variable holding the CA key's password (if it is encrypted)." placeholder:"VAR"`
	CAPasswordFile string `help:"File holding the CA key's password." placeholder:"FILE" type:"path"`
}

func (f caKeyFlags) load(dir string) (*pki.CA, error) {
	pw, err := passwordFlags{PasswordEnv: f.CAPasswordEnv, PasswordFile: f.CAPasswordFile}.read("CA key password", true, false)
	if err != nil {
		return nil, err
	}
	ca, err := pki.LoadCA(dir, pw)
	if errors.Is(err, pki.ErrPasswordRequired) {
		return nil, fmt.Errorf("%w (give it with --ca-password-env or --ca-password-file)", err)
	}
	return ca, err
}

type pkiInitCACmd struct {
	Name           string `required:"" help:"The CA's common name, e.g. apimanCA."`
	Out            string `required:"" type:"path" help:"Directory to create the CA in (ca.crt, ca.key, chain.pem, index.json)."`
	Key            string `default:"ec" enum:"ec,rsa" help:"Key type: ec (ECDSA P-256, cheap handshakes) or rsa."`
	RSABits        int    `name:"rsa-bits" help:"RSA key size with --key rsa (default 2048)."`
	Days           int    `help:"Validity in days (default 3650 for a root, 1825 for an intermediate)."`
	IntermediateOf string `type:"path" help:"Directory of the parent CA: create an intermediate CA signed by it." placeholder:"PARENT_DIR"`
	Encrypt        bool   `help:"Encrypt the CA key with a password (from --password-env/--password-file/--password-stdin or a prompt)."`
	passwordFlags
	caKeyFlags
}

func (c *pkiInitCACmd) Run(g *globals) error {
	var pw []byte
	if c.Encrypt || c.PasswordEnv != "" || c.PasswordFile != "" || c.PasswordStdin {
		var err error
		if pw, err = c.read("new CA key password", false, true); err != nil {
			return err
		}
	}
	o := pki.CAOptions{Name: c.Name, KeyType: pki.KeyType(c.Key), RSABits: c.RSABits, Days: c.Days, KeyPassword: pw}
	var ca *pki.CA
	var err error
	if c.IntermediateOf != "" {
		parent, perr := c.caKeyFlags.load(c.IntermediateOf)
		if perr != nil {
			return fmt.Errorf("parent CA: %w", perr)
		}
		ca, err = pki.InitIntermediate(c.Out, parent, o)
	} else {
		ca, err = pki.InitCA(c.Out, o)
	}
	if err != nil {
		return err
	}
	kind := "root CA"
	if c.IntermediateOf != "" {
		kind = "intermediate CA"
	}
	fmt.Fprintf(g.stdout, "created %s %q in %s (valid until %s)\n  certificate: %s\n  key:         %s (mode 0600%s)\n",
		kind, ca.Cert.Subject.CommonName, c.Out, ca.Cert.NotAfter.Format(time.DateOnly),
		filepath.Join(c.Out, pki.CertFile), filepath.Join(c.Out, pki.KeyFile), map[bool]string{true: ", encrypted", false: ""}[pw != nil])
	return nil
}

// nameFlags are the subject alternative names of a new certificate.
type nameFlags struct {
	DNS []string `help:"DNS name (repeatable)."`
	IP  []string `name:"ip" help:"IP address (repeatable)."`
	URI []string `name:"uri" help:"URI, e.g. a SPIFFE ID spiffe://example.org/ns/prod/sa/api (repeatable)."`
}

func (n nameFlags) parse() ([]net.IP, []*url.URL, error) {
	var ips []net.IP
	for _, s := range n.IP {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, nil, fmt.Errorf("--ip %q is not an IP address", s)
		}
		ips = append(ips, ip)
	}
	var uris []*url.URL
	for _, s := range n.URI {
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" {
			return nil, nil, fmt.Errorf("--uri %q is not an absolute URI", s)
		}
		uris = append(uris, u)
	}
	return ips, uris, nil
}

type pkiIssueCmd struct {
	CA     string `required:"" type:"path" help:"CA directory (from init-ca)."`
	Name   string `required:"" help:"Common name; also the DNS name of a server certificate given no --dns/--ip."`
	Client bool   `help:"Allow client authentication (extended key usage clientAuth)."`
	Server bool   `help:"Allow server authentication (serverAuth). Neither flag: both."`
	Days   int    `help:"Validity in days (default 397)."`
	Key    string `default:"ec" enum:"ec,rsa" help:"Key type: ec (ECDSA P-256) or rsa."`
	Out    string `required:"" type:"path" help:"Directory to write into."`
	Format string `default:"pem" enum:"pem,p12,jks" help:"pem: NAME.crt, NAME.key, NAME-chain.pem; p12 / jks: NAME.p12 / NAME.jks with the key under --alias."`
	Alias  string `help:"Alias of the key entry in a p12/jks store (default: --name)."`
	nameFlags
	passwordFlags
	caKeyFlags
}

func (c *pkiIssueCmd) Run(g *globals) error {
	ips, uris, err := c.parse()
	if err != nil {
		return err
	}
	var pw []byte
	switch c.Format {
	case "pem":
		// An unencrypted PEM key is the norm (file permissions protect it);
		// encrypt only when a password is named.
		pw, err = c.read("key password", true, false)
	default:
		pw, err = c.read("store password", false, true)
	}
	if err != nil {
		return err
	}
	ca, err := c.caKeyFlags.load(c.CA)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return err
	}
	is, err := ca.Issue(pki.IssueOptions{Name: c.Name, DNS: c.DNS, IPs: ips, URIs: uris, Client: c.Client, Server: c.Server, Days: c.Days, KeyType: pki.KeyType(c.Key)})
	if err != nil {
		return err
	}
	alias := c.Alias
	if alias == "" {
		alias = c.Name
	}
	var written []string
	switch c.Format {
	case "pem":
		cert, key, err := pki.WritePEM(c.Out, c.Name, is, pw)
		if err != nil {
			return err
		}
		written = []string{cert, key, filepath.Join(c.Out, c.Name+"-chain.pem")}
	case "p12":
		p := filepath.Join(c.Out, c.Name+".p12")
		if err := pki.WritePKCS12(p, alias, is, pw); err != nil {
			return err
		}
		written = []string{p + " (alias " + alias + ")"}
	case "jks":
		p := filepath.Join(c.Out, c.Name+".jks")
		if err := pki.WriteJKS(p, alias, is, pw); err != nil {
			return err
		}
		written = []string{p + " (alias " + alias + ")"}
	}
	fmt.Fprintf(g.stdout, "issued %q serial %s, valid until %s, signed by %q\n", is.Cert.Subject.CommonName,
		pki.FormatSerial(is.Cert.SerialNumber), is.Cert.NotAfter.Format(time.DateOnly), ca.Cert.Subject.CommonName)
	for _, w := range written {
		fmt.Fprintf(g.stdout, "  %s\n", w)
	}
	return nil
}

type pkiCSRCmd struct {
	Name string `required:"" help:"Common name of the subject."`
	Key  string `default:"ec" enum:"ec,rsa" help:"Key type: ec (ECDSA P-256) or rsa."`
	Out  string `required:"" type:"path" help:"Directory to write NAME.csr and NAME.key into."`
	nameFlags
	passwordFlags
}

func (c *pkiCSRCmd) Run(g *globals) error {
	ips, uris, err := c.parse()
	if err != nil {
		return err
	}
	pw, err := c.read("key password", true, false)
	if err != nil {
		return err
	}
	csr, key, err := pki.NewCSR(pki.IssueOptions{Name: c.Name, DNS: c.DNS, IPs: ips, URIs: uris, KeyType: pki.KeyType(c.Key)})
	if err != nil {
		return err
	}
	keyPEM, err := pki.MarshalPrivateKeyPEM(key, pw)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return err
	}
	csrPath, keyPath := filepath.Join(c.Out, c.Name+".csr"), filepath.Join(c.Out, c.Name+".key")
	for _, p := range []string{csrPath, keyPath} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s exists; refusing to overwrite it", p)
		}
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(csrPath, csr, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "wrote %s and %s (mode 0600)\nsign it with: portcullis pki sign --ca CA_DIR --csr %s --out %s.crt\n", csrPath, keyPath, csrPath, c.Name)
	return nil
}

type pkiSignCmd struct {
	CA     string `required:"" type:"path" help:"CA directory."`
	CSR    string `name:"csr" required:"" type:"existingfile" help:"CSR file: PEM (CERTIFICATE REQUEST or keytool's NEW CERTIFICATE REQUEST) or DER."`
	Out    string `required:"" type:"path" help:"Certificate file to write: the certificate followed by the CA chain, PEM (keytool -importcert accepts it as a reply)."`
	Client bool   `help:"Allow client authentication."`
	Server bool   `help:"Allow server authentication. Neither flag: both."`
	Days   int    `help:"Validity in days (default 397)."`
	caKeyFlags
}

func (c *pkiSignCmd) Run(g *globals) error {
	data, err := os.ReadFile(c.CSR)
	if err != nil {
		return err
	}
	ca, err := c.caKeyFlags.load(c.CA)
	if err != nil {
		return err
	}
	cert, err := ca.SignCSR(data, pki.SignOptions{Client: c.Client, Server: c.Server, Days: c.Days})
	if err != nil {
		return fmt.Errorf("%s: %w", c.CSR, err)
	}
	if _, err := os.Stat(c.Out); err == nil {
		return fmt.Errorf("%s exists; refusing to overwrite it", c.Out)
	}
	chain := append([]*x509.Certificate{cert, ca.Cert}, ca.Chain...)
	if err := os.WriteFile(c.Out, pemCerts(chain), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "signed %q serial %s, valid until %s; wrote %s (certificate + %d CA certificate(s))\n",
		cert.Subject.String(), pki.FormatSerial(cert.SerialNumber), cert.NotAfter.Format(time.DateOnly), c.Out, len(chain)-1)
	return nil
}

type pkiCRLCmd struct {
	CA         string        `required:"" type:"path" help:"CA directory."`
	Revoke     []string      `help:"Serial (hex, as openssl x509 -serial prints) or certificate file to revoke (repeatable)." placeholder:"SERIAL|CERT_FILE"`
	Reason     string        `default:"unspecified" help:"Revocation reason: unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise."`
	NextUpdate time.Duration `default:"168h" help:"How long the CRL is valid (its nextUpdate)."`
	Out        string        `required:"" type:"path" help:"CRL file to write (PEM)."`
	caKeyFlags
}

func (c *pkiCRLCmd) Run(g *globals) error {
	reason, err := pki.ParseReason(c.Reason)
	if err != nil {
		return err
	}
	ca, err := c.caKeyFlags.load(c.CA)
	if err != nil {
		return err
	}
	for _, r := range c.Revoke {
		serial, err := serialOf(r)
		if err != nil {
			return err
		}
		if err := ca.Revoke(serial, reason, time.Now()); err != nil {
			if errors.Is(err, pki.ErrAlreadyRevoked) {
				fmt.Fprintf(g.stderr, "note: %s was already revoked\n", pki.FormatSerial(serial))
				continue
			}
			return err
		}
		fmt.Fprintf(g.stdout, "revoked %s (%s)\n", pki.FormatSerial(serial), pki.ReasonName(reason))
	}
	crl, err := ca.CRL(c.NextUpdate)
	if err != nil {
		return err
	}
	if err := os.WriteFile(c.Out, crl, 0o644); err != nil {
		return err
	}
	entries, err := ca.Entries()
	if err != nil {
		return err
	}
	revoked := 0
	for _, e := range entries {
		if e.RevokedAt != nil {
			revoked++
		}
	}
	fmt.Fprintf(g.stdout, "wrote %s: %d revoked certificate(s), next update %s\n", c.Out, revoked, time.Now().Add(c.NextUpdate).UTC().Format(time.RFC3339))
	return nil
}

// serialOf accepts a serial number or a certificate file.
func serialOf(s string) (*big.Int, error) {
	if data, err := os.ReadFile(s); err == nil {
		certs, err := pki.ParseCertificatesPEM(data)
		if err != nil {
			if c, derr := x509.ParseCertificate(data); derr == nil {
				return c.SerialNumber, nil
			}
			return nil, fmt.Errorf("--revoke %s: %w", s, err)
		}
		return certs[0].SerialNumber, nil
	}
	serial, err := pki.ParseSerial(s)
	if err != nil {
		return nil, fmt.Errorf("--revoke %q is neither a readable certificate file nor a serial: %w", s, err)
	}
	return serial, nil
}

func pemCerts(certs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pemBlock("CERTIFICATE", c.Raw)...)
	}
	return out
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

package cli

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/keymaterial"
	"github.com/portcullis/portcullis/internal/pki"
)

type keystoreCmd struct {
	Inspect keystoreInspectCmd `cmd:"" help:"List a keystore's entries (PEM, PKCS#12, JKS, JCEKS): aliases, certificates, chains, expiry, with warnings."`
	Convert keystoreConvertCmd `cmd:"" help:"Convert a keystore (PEM, PKCS#12, JKS or JCEKS) to PEM, PKCS#12 or JKS."`
}

// expiringWithin is how close to its end a certificate's validity must be
// for inspect to warn about it.
const expiringWithin = 30 * 24 * time.Hour

// keyPasswordFlags name a separate key-entry password (JKS and JCEKS allow
// one per key).
type keyPasswordFlags struct {
	KeyPasswordEnv  string `help:"Environment variable holding the key password, when it differs from the store password (JKS, JCEKS)." placeholder:"VAR"`
	KeyPasswordFile string `help:"File holding the key password." placeholder:"FILE" type:"path"`
}

func (k keyPasswordFlags) read() ([]byte, error) {
	return passwordFlags{PasswordEnv: k.KeyPasswordEnv, PasswordFile: k.KeyPasswordFile}.read("key password", true, false)
}

type keystoreInspectCmd struct {
	File string `arg:"" type:"existingfile" help:"Keystore or PEM file; the format is detected from the content, not the name."`
	JSON bool   `name:"json" help:"Print JSON (fields documented in docs/migrating-from-keytool.md) instead of text."`
	passwordFlags
	keyPasswordFlags
}

// storePassword reads the password a store needs: none for a PEM file
// without encrypted keys or for content that is no store at all (the
// reader then says what it is), otherwise from the flags or a prompt.
// flags is the flag prefix to name when no password is given and there is
// no terminal ("--password" or "--in-password").
func storePassword(path string, p passwordFlags, what, flags string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	format := keymaterial.Detect(data)
	optional := format == keymaterial.FormatUnknown ||
		(format == keymaterial.FormatPEM && !bytes.Contains(data, []byte("ENCRYPTED PRIVATE KEY")))
	pw, err := p.read(what, optional, false)
	if errors.Is(err, errNoTerminal) {
		return nil, fmt.Errorf("%s is a %s store and needs its password: set %s-env VAR or %s-file FILE (no terminal to prompt at)", path, format, flags, flags)
	}
	return pw, err
}

func (c *keystoreInspectCmd) Run(g *globals) error {
	pw, err := storePassword(c.File, c.passwordFlags, "store password", "--password")
	if err != nil {
		return err
	}
	keyPW, err := c.keyPasswordFlags.read()
	if err != nil {
		return err
	}
	st, err := keymaterial.OpenStore(c.File, keymaterial.StoreOptions{Password: pw, KeyPassword: keyPW})
	clear(pw)
	clear(keyPW)
	if err != nil {
		return err
	}
	now := time.Now()
	report := inspectStore(st, now)
	if c.JSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	writeInspectText(g.stdout, report, now)
	return nil
}

// inspectReport is the JSON document of `keystore inspect --json`. Field
// names are a stable interface: add fields, never rename or remove them.
type inspectReport struct {
	File     string           `json:"file"`
	Format   string           `json:"format"`
	Entries  []inspectEntry   `json:"entries"`
	Warnings []inspectWarning `json:"warnings"`
}

type inspectEntry struct {
	Alias string `json:"alias"`
	// Kind is private-key, trusted-cert or certificate (a certificate with
	// no key that is not a trust anchor, such as a PEM chain file).
	Kind string `json:"kind"`
	// Key is set for private-key entries.
	Key          *inspectKey   `json:"key,omitempty"`
	Certificates []inspectCert `json:"certificates"`
	Chain        inspectChain  `json:"chain"`
}

type inspectKey struct {
	Type  string `json:"type"`
	Size  int    `json:"size"`
	Curve string `json:"curve,omitempty"`
	// Decrypted says whether the key could be read with the passwords given.
	Decrypted bool `json:"decrypted"`
	// MatchesCertificate is null when it cannot be known (key not
	// decrypted, or no certificate).
	MatchesCertificate *bool  `json:"matches_certificate"`
	Error              string `json:"error,omitempty"`
}

type inspectChain struct {
	// Length is the number of certificates stored with the entry.
	Length int `json:"length"`
	// Complete is true when the chain links up to a self-signed root.
	Complete bool `json:"complete"`
	// MissingIssuer is the subject of the first certificate missing on the
	// way to a root; MissingIssuerKeyID its key identifier (hex) if known.
	MissingIssuer      string `json:"missing_issuer,omitempty"`
	MissingIssuerKeyID string `json:"missing_issuer_key_id,omitempty"`
	// Unlinked counts stored certificates that are not on the path.
	Unlinked int `json:"unlinked"`
}

type inspectCert struct {
	Subject    string      `json:"subject"`
	Issuer     string      `json:"issuer"`
	SANs       inspectSANs `json:"sans"`
	Serial     string      `json:"serial"`
	NotBefore  time.Time   `json:"not_before"`
	NotAfter   time.Time   `json:"not_after"`
	DaysLeft   int         `json:"days_left"`
	KeyType    string      `json:"key_type"`
	KeySize    int         `json:"key_size"`
	SHA256     string      `json:"sha256"`
	IsCA       bool        `json:"is_ca"`
	SelfSigned bool        `json:"self_signed"`
}

type inspectSANs struct {
	DNS   []string `json:"dns"`
	IP    []string `json:"ip"`
	URI   []string `json:"uri"`
	Email []string `json:"email"`
}

type inspectWarning struct {
	Alias string `json:"alias"`
	// Code is expired, expiring, not_yet_valid, chain_incomplete,
	// key_mismatch or key_not_decrypted.
	Code    string `json:"code"`
	Message string `json:"message"`
}

func inspectStore(st *keymaterial.Store, now time.Time) inspectReport {
	r := inspectReport{File: st.Path, Format: string(st.Format), Entries: []inspectEntry{}, Warnings: []inspectWarning{}}
	warn := func(alias, code, format string, args ...any) {
		r.Warnings = append(r.Warnings, inspectWarning{Alias: alias, Code: code, Message: fmt.Sprintf(format, args...)})
	}
	for _, e := range st.Entries {
		ie := inspectEntry{Alias: e.Alias, Kind: string(e.Kind), Certificates: []inspectCert{}}
		for _, c := range e.Chain {
			ie.Certificates = append(ie.Certificates, describeCert(c, now))
			switch {
			case now.After(c.NotAfter):
				warn(e.Alias, "expired", "certificate %q expired on %s", c.Subject.String(), c.NotAfter.UTC().Format(time.DateOnly))
			case now.Before(c.NotBefore):
				warn(e.Alias, "not_yet_valid", "certificate %q is not valid before %s", c.Subject.String(), c.NotBefore.UTC().Format(time.DateOnly))
			case c.NotAfter.Sub(now) < expiringWithin:
				warn(e.Alias, "expiring", "certificate %q expires %s (%s)", c.Subject.String(), inDays(daysLeft(c, now)), c.NotAfter.UTC().Format(time.DateOnly))
			}
		}
		cs := keymaterial.CheckChain(e.Chain)
		ie.Chain = inspectChain{Length: len(e.Chain), Complete: cs.Complete, MissingIssuer: cs.MissingIssuer, Unlinked: len(cs.Unlinked)}
		if len(cs.MissingKeyID) > 0 {
			ie.Chain.MissingIssuerKeyID = hex.EncodeToString(cs.MissingKeyID)
		}
		if e.Kind == keymaterial.EntryPrivateKey {
			ie.Key = describeKey(&e)
			switch {
			case e.Key == nil:
				warn(e.Alias, "key_not_decrypted", "private key not decrypted (%v); give its password with --key-password-env or --key-password-file", e.KeyErr)
			case e.Leaf() == nil:
				warn(e.Alias, "key_mismatch", "no certificate in the store belongs to the private key")
			case !e.KeyMatches():
				warn(e.Alias, "key_mismatch", "the private key does not belong to certificate %q", e.Leaf().Subject.String())
			}
			if len(e.Chain) > 0 && !cs.Complete {
				warn(e.Alias, "chain_incomplete", "%s", missingMessage(st, &e, cs))
			}
		}
		r.Entries = append(r.Entries, ie)
	}
	return r
}

// missingMessage says which certificate a key entry's chain lacks and, when
// the store has it elsewhere, where.
func missingMessage(st *keymaterial.Store, e *keymaterial.Entry, cs keymaterial.ChainStatus) string {
	last := e.Chain[cs.Linked-1]
	what := "an intermediate or the root"
	for _, c := range storeCerts(st) {
		if bytes.Equal(c.RawIssuer, c.RawSubject) && !bytes.Equal(c.RawSubject, last.RawIssuer) {
			what = fmt.Sprintf("likely an intermediate: the store holds the root %q, but nothing that links to it", c.Subject.String())
			break
		}
	}
	msg := fmt.Sprintf("chain incomplete: %q was issued by %q, which is missing (%s)", last.Subject.String(), cs.MissingIssuer, what)
	for _, o := range st.Entries {
		if o.Alias != e.Alias && len(o.Chain) > 0 && bytes.Equal(o.Chain[0].RawSubject, last.RawIssuer) {
			msg += fmt.Sprintf("; the store holds it as entry %q, but not in this entry's chain", o.Alias)
			break
		}
	}
	return msg
}

func storeCerts(st *keymaterial.Store) []*x509.Certificate {
	var out []*x509.Certificate
	for _, e := range st.Entries {
		out = append(out, e.Chain...)
	}
	return out
}

func describeKey(e *keymaterial.Entry) *inspectKey {
	k := &inspectKey{Decrypted: e.Key != nil}
	switch {
	case e.Key != nil:
		k.Type, k.Size, k.Curve = publicKeyInfo(e.Key.Public())
		if e.Leaf() != nil {
			m := e.KeyMatches()
			k.MatchesCertificate = &m
		}
	case e.Leaf() != nil:
		// The certificate's public key tells the type without decrypting.
		k.Type, k.Size, k.Curve = publicKeyInfo(e.Leaf().PublicKey)
	}
	if e.KeyErr != nil {
		k.Error = e.KeyErr.Error()
	}
	return k
}

func describeCert(c *x509.Certificate, now time.Time) inspectCert {
	fp := sha256.Sum256(c.Raw)
	typ, size, curve := publicKeyInfo(c.PublicKey)
	if curve != "" {
		typ += " " + curve
	}
	ic := inspectCert{
		Subject:    c.Subject.String(),
		Issuer:     c.Issuer.String(),
		Serial:     pki.FormatSerial(c.SerialNumber),
		NotBefore:  c.NotBefore.UTC(),
		NotAfter:   c.NotAfter.UTC(),
		DaysLeft:   daysLeft(c, now),
		KeyType:    typ,
		KeySize:    size,
		SHA256:     colonHex(fp[:]),
		IsCA:       c.IsCA,
		SelfSigned: bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil,
		SANs:       inspectSANs{DNS: c.DNSNames, IP: []string{}, URI: []string{}, Email: c.EmailAddresses},
	}
	if ic.SANs.DNS == nil {
		ic.SANs.DNS = []string{}
	}
	if ic.SANs.Email == nil {
		ic.SANs.Email = []string{}
	}
	for _, ip := range c.IPAddresses {
		ic.SANs.IP = append(ic.SANs.IP, ip.String())
	}
	for _, u := range c.URIs {
		ic.SANs.URI = append(ic.SANs.URI, u.String())
	}
	return ic
}

// daysLeft counts whole days until the certificate ends; negative once it
// has.
func daysLeft(c *x509.Certificate, now time.Time) int {
	return int(math.Floor(c.NotAfter.Sub(now).Hours() / 24))
}

func publicKeyInfo(pub any) (typ string, size int, curve string) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen(), ""
	case *ecdsa.PublicKey:
		return "EC", k.Curve.Params().BitSize, k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519", 256, ""
	default:
		return fmt.Sprintf("%T", pub), 0, ""
	}
}

// colonHex formats a fingerprint the way keytool and openssl print one.
func colonHex(b []byte) string {
	s := strings.ToUpper(hex.EncodeToString(b))
	var out strings.Builder
	for i := 0; i < len(s); i += 2 {
		if i > 0 {
			out.WriteByte(':')
		}
		out.WriteString(s[i : i+2])
	}
	return out.String()
}

var kindNames = map[string]string{
	string(keymaterial.EntryPrivateKey):  "private key entry",
	string(keymaterial.EntryTrustedCert): "trusted certificate",
	string(keymaterial.EntryCertificate): "certificate (no key, not a trust anchor)",
}

func writeInspectText(w io.Writer, r inspectReport, now time.Time) {
	fmt.Fprintf(w, "%s: %s, %d %s\n", r.File, r.Format, len(r.Entries), plural(len(r.Entries), "entry", "entries"))
	for i, e := range r.Entries {
		fmt.Fprintf(w, "\nEntry %d: %q, %s\n", i+1, e.Alias, kindNames[e.Kind])
		if k := e.Key; k != nil {
			state := "decrypted"
			switch {
			case !k.Decrypted:
				state = "not decrypted"
			case k.MatchesCertificate != nil && *k.MatchesCertificate:
				state = "decrypted, matches the certificate"
			case k.MatchesCertificate != nil:
				state = "decrypted, DOES NOT match the certificate"
			}
			fmt.Fprintf(w, "  Key:         %s (%s)\n", keyLabel(k.Type, k.Size, k.Curve), state)
		}
		if e.Kind == string(keymaterial.EntryPrivateKey) || len(e.Certificates) > 1 {
			fmt.Fprintf(w, "  Chain:       %s\n", chainLabel(e.Chain))
		}
		for j, c := range e.Certificates {
			role := ""
			switch {
			case len(e.Certificates) == 1:
			case j == 0:
				role = " (leaf)"
			case c.SelfSigned:
				role = " (root)"
			default:
				role = " (intermediate)"
			}
			fmt.Fprintf(w, "  Certificate %d%s\n", j+1, role)
			fmt.Fprintf(w, "    Subject:     %s\n", c.Subject)
			fmt.Fprintf(w, "    Issuer:      %s\n", c.Issuer)
			if sans := sanList(c.SANs); sans != "" {
				fmt.Fprintf(w, "    SANs:        %s\n", sans)
			}
			fmt.Fprintf(w, "    Serial:      %s\n", c.Serial)
			fmt.Fprintf(w, "    Valid:       %s to %s (%s)\n", c.NotBefore.Format(time.DateTime), c.NotAfter.Format(time.DateTime), daysLabel(c, now))
			ca := ""
			if c.IsCA {
				ca = ", CA"
			}
			fmt.Fprintf(w, "    Public key:  %s%s\n", keyLabel(c.KeyType, c.KeySize, ""), ca)
			fmt.Fprintf(w, "    SHA-256:     %s\n", c.SHA256)
		}
	}
	if len(r.Warnings) == 0 {
		fmt.Fprintf(w, "\nNo warnings.\n")
		return
	}
	fmt.Fprintf(w, "\nWarnings:\n")
	for _, wn := range r.Warnings {
		fmt.Fprintf(w, "  %q: %s\n", wn.Alias, wn.Message)
	}
}

func keyLabel(typ string, size int, curve string) string {
	switch {
	case curve != "":
		return typ + " " + curve
	case strings.HasPrefix(typ, "EC "), typ == "Ed25519", size == 0:
		return typ
	default:
		return fmt.Sprintf("%s %d", typ, size)
	}
}

func chainLabel(c inspectChain) string {
	var s string
	switch {
	case c.Length == 0:
		return "no certificate"
	case c.Complete && c.Length == 1:
		s = "1 certificate, self-signed"
	case c.Complete:
		s = fmt.Sprintf("%d certificates, complete up to a self-signed root", c.Length)
	default:
		s = fmt.Sprintf("%d %s, INCOMPLETE: missing %q", c.Length, plural(c.Length, "certificate", "certificates"), c.MissingIssuer)
	}
	if c.Unlinked > 0 {
		s += fmt.Sprintf(" (%d stored %s not on the path)", c.Unlinked, plural(c.Unlinked, "certificate", "certificates"))
	}
	return s
}

func sanList(s inspectSANs) string {
	var parts []string
	for _, v := range s.DNS {
		parts = append(parts, "DNS:"+v)
	}
	for _, v := range s.IP {
		parts = append(parts, "IP:"+v)
	}
	for _, v := range s.URI {
		parts = append(parts, "URI:"+v)
	}
	for _, v := range s.Email {
		parts = append(parts, "email:"+v)
	}
	return strings.Join(parts, ", ")
}

// daysLabel says how many whole days a certificate has left or, once it
// has expired, how many whole days ago that was. days_left cannot say the
// latter: it is rounded down, so a certificate that ended an hour ago has
// -1 and one that ended 25 hours ago -2.
func daysLabel(c inspectCert, now time.Time) string {
	if !now.After(c.NotAfter) {
		switch c.DaysLeft {
		case 0:
			return "less than a day left"
		case 1:
			return "1 day left"
		default:
			return fmt.Sprintf("%d days left", c.DaysLeft)
		}
	}
	switch ago := int(now.Sub(c.NotAfter).Hours() / 24); ago {
	case 0:
		return "EXPIRED less than a day ago"
	case 1:
		return "EXPIRED 1 day ago"
	default:
		return fmt.Sprintf("EXPIRED %d days ago", ago)
	}
}

// inDays completes "expires ..." for d whole days left.
func inDays(d int) string {
	switch d {
	case 0:
		return "within a day"
	case 1:
		return "in 1 day"
	default:
		return fmt.Sprintf("in %d days", d)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

type keystoreConvertCmd struct {
	In                string `arg:"" type:"existingfile" help:"Store to read: PEM, PKCS#12, JKS or JCEKS (detected from the content)."`
	Out               string `arg:"" type:"path" help:"File to write."`
	Alias             string `help:"Convert only this entry (case-insensitive). Default: every key and trusted-certificate entry."`
	To                string `enum:"pem,p12,jks," default:"" help:"Output format: pem, p12 or jks. Default: from OUT's extension (.pem/.crt, .p12/.pfx, .jks)."`
	Force             bool   `help:"Replace OUT if it exists."`
	InPasswordEnv     string `help:"Environment variable holding IN's store password." placeholder:"VAR"`
	InPasswordFile    string `help:"File holding IN's store password." placeholder:"FILE" type:"path"`
	InKeyPasswordEnv  string `help:"Environment variable holding IN's key password, when it differs from the store password (JKS, JCEKS)." placeholder:"VAR"`
	InKeyPasswordFile string `help:"File holding IN's key password." placeholder:"FILE" type:"path"`
	OutPasswordEnv    string `help:"Environment variable holding OUT's password (required for p12/jks; for pem it encrypts the key)." placeholder:"VAR"`
	OutPasswordFile   string `help:"File holding OUT's password." placeholder:"FILE" type:"path"`
}

// outputFormat resolves --to, else OUT's extension.
func (c *keystoreConvertCmd) outputFormat() (string, error) {
	if c.To != "" {
		return c.To, nil
	}
	switch strings.ToLower(filepath.Ext(c.Out)) {
	case ".pem", ".crt":
		return "pem", nil
	case ".p12", ".pfx":
		return "p12", nil
	case ".jks":
		return "jks", nil
	}
	return "", fmt.Errorf("cannot tell the output format from the name %q; give --to pem, --to p12 or --to jks", c.Out)
}

func (c *keystoreConvertCmd) Run(g *globals) error {
	to, err := c.outputFormat()
	if err != nil {
		return err
	}
	if _, err := os.Stat(c.Out); err == nil && !c.Force {
		return fmt.Errorf("%s exists; refusing to overwrite it (use --force to replace it)", c.Out)
	}
	inPW, err := storePassword(c.In, passwordFlags{PasswordEnv: c.InPasswordEnv, PasswordFile: c.InPasswordFile}, "password of "+c.In, "--in-password")
	if err != nil {
		return err
	}
	defer clear(inPW)
	inKeyPW, err := keyPasswordFlags{KeyPasswordEnv: c.InKeyPasswordEnv, KeyPasswordFile: c.InKeyPasswordFile}.read()
	if err != nil {
		return err
	}
	defer clear(inKeyPW)
	st, err := keymaterial.OpenStore(c.In, keymaterial.StoreOptions{Password: inPW, KeyPassword: inKeyPW})
	if err != nil {
		return err
	}
	entries, skipped, err := c.selectEntries(st, to)
	if err != nil {
		return err
	}
	// PEM needs no password (an unencrypted key is protected by the file's
	// mode); the store formats do.
	outPW, err := passwordFlags{PasswordEnv: c.OutPasswordEnv, PasswordFile: c.OutPasswordFile}.read("password for "+c.Out, to == "pem", true)
	if errors.Is(err, errNoTerminal) {
		return errors.New("a password for the new store is needed: set --out-password-env VAR or --out-password-file FILE (no terminal to prompt at)")
	}
	if err != nil {
		return err
	}
	defer clear(outPW)
	if err := writeConverted(c.Out, to, entries, outPW, c.Force); err != nil {
		return err
	}
	var keys, trusted []string
	for _, e := range entries {
		if e.Key != nil {
			keys = append(keys, fmt.Sprintf("%q", e.Alias))
		} else {
			trusted = append(trusted, fmt.Sprintf("%q", e.Alias))
		}
	}
	fmt.Fprintf(g.stdout, "wrote %s (%s) from %s (%s): %d key %s", c.Out, to, c.In, st.Format, len(keys), plural(len(keys), "entry", "entries"))
	if len(keys) > 0 {
		fmt.Fprintf(g.stdout, " (%s)", strings.Join(keys, ", "))
	}
	fmt.Fprintf(g.stdout, ", %d trusted %s", len(trusted), plural(len(trusted), "certificate", "certificates"))
	if len(trusted) > 0 {
		fmt.Fprintf(g.stdout, " (%s)", strings.Join(trusted, ", "))
	}
	fmt.Fprintln(g.stdout)
	for _, s := range skipped {
		fmt.Fprintf(g.stderr, "note: %s\n", s)
	}
	return nil
}

// selectEntries picks what to convert and turns it into pki entries. Key
// entries whose key could not be decrypted are an error, never dropped.
func (c *keystoreConvertCmd) selectEntries(st *keymaterial.Store, to string) ([]pki.StoreEntry, []string, error) {
	var chosen []keymaterial.Entry
	var skipped []string
	if c.Alias != "" {
		e, err := st.Entry(c.Alias)
		if err != nil {
			return nil, nil, err
		}
		chosen = []keymaterial.Entry{*e}
	} else {
		for _, e := range st.Entries {
			if e.Kind == keymaterial.EntryCertificate {
				skipped = append(skipped, fmt.Sprintf("entry %q is a certificate that is neither trusted nor in a key's chain; not converted (select it with --alias to convert it as a trusted certificate)", e.Alias))
				continue
			}
			chosen = append(chosen, e)
		}
	}
	var out []pki.StoreEntry
	var keyAliases []string
	for _, e := range chosen {
		if len(e.Chain) == 0 {
			return nil, nil, fmt.Errorf("entry %q: no certificate belongs to its key; nothing to convert", e.Alias)
		}
		if e.Kind != keymaterial.EntryPrivateKey {
			out = append(out, pki.StoreEntry{Alias: e.Alias, Chain: e.Chain[:1]})
			continue
		}
		if e.Key == nil {
			return nil, nil, fmt.Errorf("entry %q: %w (give IN's key password with --in-key-password-env or --in-key-password-file)", e.Alias, e.KeyErr)
		}
		if !e.KeyMatches() {
			return nil, nil, fmt.Errorf("entry %q: the private key does not belong to certificate %q; refusing to write a broken entry", e.Alias, e.Leaf().Subject.String())
		}
		// Only the certificates on the path from the leaf are written as
		// the chain, so the output never repeats a damaged layout.
		cs := keymaterial.CheckChain(e.Chain)
		out = append(out, pki.StoreEntry{Alias: e.Alias, Key: e.Key, Chain: e.Chain[:cs.Linked]})
		keyAliases = append(keyAliases, fmt.Sprintf("%q", e.Alias))
	}
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("%s holds nothing to convert", st.Path)
	}
	if to == "pem" && len(keyAliases) > 1 {
		return nil, nil, fmt.Errorf("%s holds %d key entries (%s) and a PEM file holds one key; choose one with --alias, or convert to p12 or jks", st.Path, len(keyAliases), strings.Join(keyAliases, ", "))
	}
	return out, skipped, nil
}

// writeConverted writes entries to path. With force the file is written
// next to path and renamed over it, so a failure leaves the old file.
func writeConverted(path, to string, entries []pki.StoreEntry, password []byte, force bool) error {
	target := path
	if force {
		dir, err := os.MkdirTemp(filepath.Dir(path), ".portcullis-convert-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		target = filepath.Join(dir, filepath.Base(path))
	}
	var err error
	switch to {
	case "pem":
		err = writePEMEntries(target, entries, password)
	case "p12":
		if single, ok := singleKey(entries); ok {
			err = pki.WritePKCS12(target, single.Alias, issuedOf(single), password)
		} else {
			err = pki.WritePKCS12Entries(target, entries, password)
		}
	case "jks":
		if single, ok := singleKey(entries); ok {
			err = pki.WriteJKS(target, single.Alias, issuedOf(single), password)
		} else {
			err = pki.WriteJKSEntries(target, entries, password)
		}
	}
	if err != nil {
		return err
	}
	if force {
		return os.Rename(target, path)
	}
	return nil
}

// singleKey reports whether entries is exactly one key entry, which the
// single-entry writers that `pki issue` uses handle.
func singleKey(entries []pki.StoreEntry) (pki.StoreEntry, bool) {
	if len(entries) == 1 && entries[0].Key != nil {
		return entries[0], true
	}
	return pki.StoreEntry{}, false
}

func issuedOf(e pki.StoreEntry) *pki.Issued {
	return &pki.Issued{Cert: e.Chain[0], Key: e.Key, Chain: e.Chain[1:]}
}

// writePEMEntries writes the key (PKCS#8, encrypted when password is set)
// followed by its chain, then any trusted certificates, each certificate
// once; read back, the key and its chain form one entry and the rest are
// trusted certificates.
func writePEMEntries(path string, entries []pki.StoreEntry, password []byte) error {
	var out []byte
	perm := os.FileMode(0o644)
	seen := map[string]bool{}
	for _, e := range entries {
		if e.Key == nil {
			continue
		}
		keyPEM, err := pki.MarshalPrivateKeyPEM(e.Key, password)
		if err != nil {
			return err
		}
		out = append(out, keyPEM...)
		perm = 0o600
	}
	for _, e := range entries {
		for _, c := range e.Chain {
			if !seen[string(c.Raw)] {
				seen[string(c.Raw)] = true
				out = append(out, pemBlock("CERTIFICATE", c.Raw)...)
			}
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(out); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

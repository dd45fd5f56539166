package keymaterial

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
)

// EntryKind says what a keystore entry holds.
type EntryKind string

// The entry kinds a Store lists.
const (
	// EntryPrivateKey is a private key with its certificate chain (keytool's
	// PrivateKeyEntry; a key block of a PEM file with its certificates).
	EntryPrivateKey EntryKind = "private-key"
	// EntryTrustedCert is a trusted certificate (keytool's trustedCertEntry;
	// a certificate of a PEM file that belongs to no key, which is how
	// LoadTrust reads PEM bundles; every certificate of a PKCS#12 file
	// without keys).
	EntryTrustedCert EntryKind = "trusted-cert"
	// EntryCertificate is a certificate that is not meant as a trust
	// anchor: the end-entity certificate (with its chain) that starts a PEM
	// file without keys, or a PKCS#12 certificate bag that carries no trust
	// attribute and is in no key entry's chain (LoadTrust ignores those).
	EntryCertificate EntryKind = "certificate"
)

// Entry is one entry of a keystore.
type Entry struct {
	// Alias is the entry's name: the keystore alias, a PKCS#12 friendlyName,
	// or for unnamed entries and PEM files a name derived from the
	// certificate's common name (see DeriveAliases).
	Alias string
	// Kind says what the entry holds.
	Kind EntryKind
	// Chain is, for a key entry, the certificate paired with the key
	// followed by the rest of its chain, ordered towards the root as far as
	// the certificates link, then any that do not link; it is empty when no
	// certificate could be paired with the key. A trusted-cert entry holds
	// exactly one certificate; a certificate entry one, or for a PEM file a
	// leaf with its chain.
	Chain []*x509.Certificate
	// Key is the decrypted private key of a key entry, nil otherwise or when
	// it could not be decrypted.
	Key crypto.Signer
	// KeyErr says why a key entry's Key is nil (wrong key password, an
	// encrypted PEM key without a password, a key type that cannot sign).
	// It wraps this package's sentinels and never contains a secret.
	KeyErr error
}

// Leaf returns the first certificate of the chain, or nil.
func (e *Entry) Leaf() *x509.Certificate {
	if len(e.Chain) == 0 {
		return nil
	}
	return e.Chain[0]
}

// KeyMatches reports whether the entry's decrypted key belongs to its leaf.
// It is false when either is missing.
func (e *Entry) KeyMatches() bool {
	return e.Key != nil && e.Leaf() != nil && keyMatches(e.Key, e.Leaf())
}

// Store is the content of a key-material file, entry by entry.
type Store struct {
	// Path is the file read.
	Path string
	// Format is the format detected from the content.
	Format Format
	// Entries are in file order for PEM and sorted by alias otherwise.
	Entries []Entry
}

// StoreOptions holds the passwords for reading a store.
type StoreOptions struct {
	// Password is the store password (the key password of an encrypted PEM
	// key). It may be nil for PEM files without encrypted keys.
	Password []byte
	// KeyPassword is tried after Password for key entries whose password
	// differs from the store's (JKS and JCEKS allow that). Nil means none.
	KeyPassword []byte
}

// Inspect reads every entry of the store at path (PEM, PKCS#12, JKS or
// JCEKS, detected by content) with password as both store and key password.
// See OpenStore.
func Inspect(path string, password []byte) (*Store, error) {
	return OpenStore(path, StoreOptions{Password: password})
}

// OpenStore reads every entry of the store at path. The store's integrity
// is checked with o.Password first, so a wrong store password is an error
// (ErrWrongPassword) rather than an empty listing. A key entry whose key
// cannot be decrypted is still returned, with its chain and KeyErr set, so
// that a store can be listed with only its store password. Nothing is
// checked against the clock and a key that does not match its certificate
// is not an error: Store describes what is there, and the caller judges it.
// Errors wrap this package's sentinels, name the file and the detected
// format, and never contain a secret.
func OpenStore(path string, o StoreOptions) (*Store, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading keystore: %w", err)
	}
	return readStore(data, path, o, defaultLimits)
}

func readStore(data []byte, name string, o StoreOptions, lim limits) (*Store, error) {
	format := Detect(data)
	var (
		entries []Entry
		err     error
	)
	switch format {
	case FormatPEM:
		entries, err = pemEntries(data, o.Password, lim)
	case FormatPKCS12:
		entries, err = pkcs12Entries(data, o, lim)
	case FormatJKS:
		entries, err = jksEntries(data, o)
	case FormatJCEKS:
		entries, err = jceksEntries(data, name, o, lim)
	default:
		err = fmt.Errorf("content is not pem, pkcs12, jks or jceks: %w", ErrUnsupportedFormat)
	}
	if err != nil {
		return nil, fmt.Errorf("keystore %q (%s): %w", name, format, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("keystore %q (%s): no keys and no certificates: %w", name, format, ErrNoCertificates)
	}
	if format != FormatPEM {
		slices.SortStableFunc(entries, func(a, b Entry) int { return strings.Compare(a.Alias, b.Alias) })
	}
	return &Store{Path: name, Format: format, Entries: entries}, nil
}

// Aliases returns the aliases of the entries in order.
func (s *Store) Aliases() []string {
	out := make([]string, len(s.Entries))
	for i, e := range s.Entries {
		out[i] = e.Alias
	}
	return out
}

// Entry returns the entry named alias, matched case-insensitively as
// keytool does. An unknown alias is ErrAliasNotFound with every alias of
// the store and its kind listed.
func (s *Store) Entry(alias string) (*Entry, error) {
	for i := range s.Entries {
		if strings.EqualFold(s.Entries[i].Alias, alias) {
			return &s.Entries[i], nil
		}
	}
	var have []string
	for _, e := range s.Entries {
		have = append(have, fmt.Sprintf("%q (%s)", e.Alias, e.Kind))
	}
	return nil, fmt.Errorf("keystore %q: alias %q not found; the store holds %s: %w", s.Path, alias, strings.Join(have, ", "), ErrAliasNotFound)
}

// passwords lists the key passwords to try, in order.
func (o StoreOptions) passwords() [][]byte {
	pws := [][]byte{o.Password}
	if o.KeyPassword != nil {
		pws = append(pws, o.KeyPassword)
	}
	return pws
}

// signerOf turns a decrypted key into a crypto.Signer or explains why not.
func signerOf(key any, err error) (crypto.Signer, error) {
	if err != nil {
		return nil, err
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign: %w", key, ErrUnsupportedFormat)
	}
	return s, nil
}

func pemEntries(data, password []byte, lim limits) ([]Entry, error) {
	certs, err := pemCertificates(data, "pem file")
	if err != nil {
		return nil, err
	}
	var entries []Entry
	used := map[*x509.Certificate]bool{}
	for _, k := range pemPrivateKeys(data, "pem file", password, lim) {
		e := Entry{Kind: EntryPrivateKey}
		e.Key, e.KeyErr = signerOf(k.key, k.err)
		var leaf *x509.Certificate
		if e.Key != nil {
			if i := slices.IndexFunc(certs, func(c *x509.Certificate) bool { return !used[c] && keyMatches(e.Key, c) }); i >= 0 {
				leaf = certs[i]
			}
		}
		if leaf == nil {
			// Without a matching certificate the first unused one is shown as
			// the key's, so that a mismatch is visible rather than hidden.
			if i := slices.IndexFunc(certs, func(c *x509.Certificate) bool { return !used[c] }); i >= 0 {
				leaf = certs[i]
			}
		}
		if leaf != nil {
			var pool []*x509.Certificate
			for _, c := range certs {
				if !used[c] {
					pool = append(pool, c)
				}
			}
			e.Chain = orderChain(leaf, pool, false)
			for _, c := range e.Chain {
				used[c] = true
			}
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 && len(certs) > 0 && !certs[0].IsCA {
		// A file that starts with an end-entity certificate is that
		// certificate's chain (what `pki issue` and most CAs hand out), not
		// a bundle of anchors.
		e := Entry{Kind: EntryCertificate, Chain: orderChain(certs[0], certs, false)}
		for _, c := range e.Chain {
			used[c] = true
		}
		entries = append(entries, e)
	}
	for _, c := range certs {
		if !used[c] {
			entries = append(entries, Entry{Kind: EntryTrustedCert, Chain: []*x509.Certificate{c}})
		}
	}
	nameEntries(entries, func(int) (string, bool) { return "", false })
	return entries, nil
}

// nameEntries gives each entry without an alias one derived from its leaf
// (see DeriveAliases), unique among the store's aliases. given returns the
// stored alias of entry i, if it has one.
func nameEntries(entries []Entry, given func(i int) (string, bool)) {
	taken := map[string]bool{}
	for i := range entries {
		if a, ok := given(i); ok {
			entries[i].Alias = a
			taken[strings.ToLower(a)] = true
		}
	}
	for i := range entries {
		if _, ok := given(i); ok {
			continue
		}
		base := "key"
		if entries[i].Kind != EntryPrivateKey {
			base = "cert"
		}
		if l := entries[i].Leaf(); l != nil {
			base = DeriveAliases([]*x509.Certificate{l})[0]
		}
		alias := base
		for n := 2; taken[alias]; n++ {
			alias = fmt.Sprintf("%s-%d", base, n)
		}
		taken[alias] = true
		entries[i].Alias = alias
	}
}

// DeriveAliases returns an alias for each certificate: the subject common
// name (or "cert" if it has none), lowercased, with characters other than
// letters, digits, '.', '_' and '-' replaced by '-', and "-2", "-3", ...
// appended to repeats. It names entries that have no alias of their own.
func DeriveAliases(certs []*x509.Certificate) []string {
	used := map[string]bool{}
	out := make([]string, len(certs))
	for i, c := range certs {
		base := strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
				return r
			}
			return '-'
		}, strings.ToLower(strings.TrimSpace(c.Subject.CommonName)))
		if base == "" {
			base = "cert"
		}
		alias := base
		for n := 2; used[alias]; n++ {
			alias = fmt.Sprintf("%s-%d", base, n)
		}
		used[alias] = true
		out[i] = alias
	}
	return out
}

func pkcs12Entries(data []byte, o StoreOptions, lim limits) ([]Entry, error) {
	st, err := parsePKCS12(data, o.Password, lim)
	if err != nil {
		return nil, err
	}
	if len(st.skipped) > 0 {
		if err := st.fillFromGoPKCS12(data, o.Password, lim); err != nil {
			return nil, err
		}
	}
	var all []*x509.Certificate
	for _, c := range st.certs {
		all = append(all, c.cert)
	}
	var entries []Entry
	var named []bool
	inChain := map[string]bool{}
	for i := range st.keys {
		k := &st.keys[i]
		e := Entry{Alias: k.alias, Kind: EntryPrivateKey}
		key, kerr := k.decryptKey(lim, o.passwords()...)
		e.Key, e.KeyErr = signerOf(key, kerr)
		if leaf, err := st.leafFor(k, key); err == nil {
			e.Chain = orderChain(leaf, all, false)
			for _, c := range e.Chain {
				inChain[string(c.Raw)] = true
			}
		}
		entries = append(entries, e)
		named = append(named, true)
	}
	for _, c := range st.certs {
		kind := EntryTrustedCert
		switch {
		case len(st.keys) == 0, c.trusted:
		case inChain[string(c.cert.Raw)]:
			continue
		default:
			kind = EntryCertificate
		}
		entries = append(entries, Entry{Alias: c.alias, Kind: kind, Chain: []*x509.Certificate{c.cert}})
		named = append(named, c.named)
	}
	nameEntries(entries, func(i int) (string, bool) { return entries[i].Alias, named[i] })
	return entries, nil
}

func jksEntries(data []byte, o StoreOptions) ([]Entry, error) {
	st, err := loadJKS(data, o.Password)
	if err != nil {
		return nil, err
	}
	keys, trusted := st.aliases()
	var entries []Entry
	for _, a := range keys {
		refs, err := st.ks.GetPrivateKeyEntryCertificateChain(a)
		if err != nil {
			return nil, fmt.Errorf("alias %q: %v: %w", a, err, ErrCorrupt)
		}
		chain, err := jksCertificates(refs)
		if err != nil {
			return nil, fmt.Errorf("alias %q: %w", a, err)
		}
		e := Entry{Alias: a, Kind: EntryPrivateKey}
		if len(chain) > 0 {
			e.Chain = orderChain(chain[0], chain, true)
		}
		key, _, kerr := st.privateKey(a, o.keyPasswordsFirst()...)
		e.Key, e.KeyErr = signerOf(key, kerr)
		entries = append(entries, e)
	}
	for _, a := range trusted {
		te, err := st.ks.GetTrustedCertificateEntry(a)
		if err != nil {
			return nil, fmt.Errorf("alias %q: %v: %w", a, err, ErrCorrupt)
		}
		c, err := parseJavaCerts([]javaCert{{typ: te.Certificate.Type, der: te.Certificate.Content}})
		if err != nil {
			return nil, fmt.Errorf("alias %q: %w", a, err)
		}
		entries = append(entries, Entry{Alias: a, Kind: EntryTrustedCert, Chain: c})
	}
	return entries, nil
}

// keyPasswordsFirst lists the key password before the store password: in a
// Java keystore a separate key password, when given, is the likelier one,
// and each wrong try of the JKS protector costs little.
func (o StoreOptions) keyPasswordsFirst() [][]byte {
	if o.KeyPassword == nil {
		return [][]byte{o.Password}
	}
	return [][]byte{o.KeyPassword, o.Password}
}

func jceksEntries(data []byte, name string, o StoreOptions, lim limits) ([]Entry, error) {
	st, err := loadJCEKS(data, o.Password, name, lim)
	if err != nil {
		return nil, err
	}
	keys, trusted := st.aliases()
	var entries []Entry
	for _, a := range keys {
		chain, err := st.chain(a)
		if err != nil {
			return nil, fmt.Errorf("alias %q: %w", a, err)
		}
		e := Entry{Alias: a, Kind: EntryPrivateKey}
		if len(chain) > 0 {
			e.Chain = orderChain(chain[0], chain, true)
		}
		key, _, kerr := st.privateKey(a, o.keyPasswordsFirst()...)
		e.Key, e.KeyErr = signerOf(key, kerr)
		entries = append(entries, e)
	}
	for _, a := range trusted {
		chain, err := st.chain(a)
		if err != nil {
			return nil, fmt.Errorf("alias %q: %w", a, err)
		}
		entries = append(entries, Entry{Alias: a, Kind: EntryTrustedCert, Chain: chain})
	}
	return entries, nil
}

// ChainStatus says how far a key entry's chain reaches.
type ChainStatus struct {
	// Linked is how many certificates, from the leaf, each issued the one
	// before it (names, key identifiers and signature checked).
	Linked int
	// Complete is true when the last linked certificate is self-signed: the
	// chain reaches a root.
	Complete bool
	// MissingIssuer is, when the chain is incomplete, the subject of the
	// certificate that would come next (the issuer of the last linked one).
	MissingIssuer string
	// MissingKeyID is that certificate's subject key identifier as the last
	// linked certificate names it (its authority key identifier), if any.
	MissingKeyID []byte
	// Unlinked are the chain's certificates after the linked ones: stored
	// with the entry but not part of the path from the leaf.
	Unlinked []*x509.Certificate
}

// CheckChain reports how far chain (leaf first) links up towards a root.
// An empty chain is incomplete with nothing linked.
func CheckChain(chain []*x509.Certificate) ChainStatus {
	var s ChainStatus
	if len(chain) == 0 {
		return s
	}
	s.Linked = 1
	for s.Linked < len(chain) && signedBy(chain[s.Linked-1], chain[s.Linked]) {
		s.Linked++
	}
	last := chain[s.Linked-1]
	s.Unlinked = chain[s.Linked:]
	if isSelfIssued(last) && signedBy(last, last) {
		s.Complete = true
		return s
	}
	s.MissingIssuer = last.Issuer.String()
	s.MissingKeyID = last.AuthorityKeyId
	return s
}

// signedBy reports whether parent issued child, signature included. The
// signature is checked with parent's key alone: CheckSignatureFrom would
// also demand CA constraints, which keytool's self-signed leaves lack.
func signedBy(child, parent *x509.Certificate) bool {
	return issuedBy(child, parent) && parent.CheckSignature(child.SignatureAlgorithm, child.RawTBSCertificate, child.Signature) == nil
}

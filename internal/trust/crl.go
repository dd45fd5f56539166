package trust

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Extension OIDs that decide whether a CRL can be used as a complete list.
var (
	oidDeltaCRLIndicator        = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidIssuingDistributionPoint = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidCRLNumber                = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidAuthorityKeyIdentifier   = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidEntryReasonCode          = asn1.ObjectIdentifier{2, 5, 29, 21}
	oidEntryInvalidityDate      = asn1.ObjectIdentifier{2, 5, 29, 24}
)

// crlSource is one configured CRL file or URL. Its fields other than name
// and isURL are guarded by Set.crlMu.
type crlSource struct {
	name  string
	isURL bool

	good        []*crlData // last good copy; nil until one is loaded
	sum         [sha256.Size]byte
	lastAttempt time.Time
	lastErr     error
}

// crlData is one parsed CRL. Its fields are immutable once published except
// the signature cache.
type crlData struct {
	source     string
	rawIssuer  []byte
	issuerName string
	thisUpdate time.Time
	nextUpdate time.Time
	number     *big.Int
	// serials is sorted, and entries[i] belongs to serials[i], so a lookup
	// is a binary search that allocates nothing.
	serials []*big.Int
	entries []crlEntry
	// signed carries what CheckSignatureFrom needs; the revoked entries are
	// dropped from it.
	signed *x509.RevocationList

	// signer is a CA certificate whose key verified this CRL. It is set at
	// load for CRLs issued by an anchor, and on first use for CRLs issued by
	// an intermediate the peer sends.
	signer   atomic.Pointer[x509.Certificate]
	sigMu    sync.Mutex
	rejected map[string]bool // keyed by issuer SubjectPublicKeyInfo; guarded by sigMu
}

type crlEntry struct {
	revokedAt time.Time
	reason    int
}

// crlIndex is the immutable view Verify reads.
type crlIndex struct {
	byIssuer map[string][]*crlData // keyed by the CRL's raw issuer name
	missing  []string              // sources with no good copy
}

// lookup finds serial in the CRL.
func (d *crlData) lookup(serial *big.Int) (crlEntry, bool) {
	i, found := slices.BinarySearchFunc(d.serials, serial, (*big.Int).Cmp)
	if !found {
		return crlEntry{}, false
	}
	return d.entries[i], true
}

// signedBy reports whether issuer's key verified the CRL. The common case is
// a pointer or key comparison; a signature check happens once per issuer key.
func (d *crlData) signedBy(issuer *x509.Certificate) bool {
	if s := d.signer.Load(); s != nil && (s == issuer || bytes.Equal(s.RawSubjectPublicKeyInfo, issuer.RawSubjectPublicKeyInfo)) {
		return true
	}
	d.sigMu.Lock()
	defer d.sigMu.Unlock()
	if d.rejected[string(issuer.RawSubjectPublicKeyInfo)] {
		return false
	}
	if d.signed.CheckSignatureFrom(issuer) != nil {
		if d.rejected == nil {
			d.rejected = map[string]bool{}
		}
		d.rejected[string(issuer.RawSubjectPublicKeyInfo)] = true
		return false
	}
	d.signer.Store(issuer)
	return true
}

func (d *crlData) stale(now time.Time) bool {
	return !d.nextUpdate.IsZero() && now.After(d.nextUpdate)
}

// crlOutcome is what the CRLs say about one certificate.
type crlOutcome int

const (
	crlNotCovered  crlOutcome = iota // no CRL from this issuer is configured
	crlGood                          // a fresh CRL from the issuer does not list it
	crlRevoked                       // a CRL from the issuer lists it
	crlUnavailable                   // the issuer's CRL is stale, or a source never loaded
)

// checkCRL checks cert, issued by issuer, against the loaded CRLs. A serial
// listed on any CRL from the issuer is revoked even if that CRL is stale,
// because revocation is permanent.
func (ix *crlIndex) checkCRL(cert, issuer *x509.Certificate, now time.Time) (crlOutcome, crlEntry, *crlData) {
	var found, stale *crlData
	for _, d := range ix.byIssuer[string(cert.RawIssuer)] {
		if !d.signedBy(issuer) {
			continue
		}
		if e, ok := d.lookup(cert.SerialNumber); ok {
			return crlRevoked, e, d
		}
		if d.stale(now) {
			stale = d
		} else {
			found = d
		}
	}
	switch {
	case found != nil:
		return crlGood, crlEntry{}, found
	case stale != nil:
		return crlUnavailable, crlEntry{}, stale
	case len(ix.missing) > 0:
		return crlUnavailable, crlEntry{}, nil
	}
	return crlNotCovered, crlEntry{}, nil
}

// refreshSource reads or fetches one source and, if its CRLs parse and
// verify, publishes them. On failure the last good copy stays in use.
func (s *Set) refreshSource(src *crlSource) {
	now := time.Now()
	data, err := s.readSource(src)
	var sum [sha256.Size]byte
	if err == nil {
		sum = sha256.Sum256(data)
	}

	s.crlMu.Lock()
	defer s.crlMu.Unlock()
	src.lastAttempt = now
	var crls []*crlData
	// Re-reading identical bytes is a success that changes nothing, which
	// keeps a ten-minute file poll from re-parsing a large CRL.
	unchanged := err == nil && src.good != nil && sum == src.sum
	if err == nil && !unchanged {
		crls, err = s.parseCRLs(src, data, now)
	}
	if err != nil {
		src.lastErr = err
		s.stats.crlFailed.Add(1)
		if src.good != nil {
			s.logger.Warn("CRL refresh failed; keeping the last good copy",
				"trust_set", s.name, "source", src.name, "error", err,
				"last_good_this_update", src.good[0].thisUpdate, "last_good_next_update", earliestNextUpdate(src.good))
		} else {
			s.logger.Error("CRL could not be loaded; certificates it may cover have no revocation data",
				"trust_set", s.name, "source", src.name, "error", err, "fail_open", s.failOpen)
		}
		s.publishLocked()
		return
	}
	src.lastErr = nil
	s.stats.crlOK.Add(1)
	if unchanged {
		return
	}
	src.good, src.sum = crls, sum
	s.publishLocked()
	for _, d := range crls {
		s.logger.Info("CRL loaded", "trust_set", s.name, "source", src.name, "issuer", d.issuerName,
			"entries", len(d.serials), "this_update", d.thisUpdate, "next_update", d.nextUpdate)
	}
}

// publishLocked rebuilds the index Verify reads. s.crlMu must be held.
func (s *Set) publishLocked() {
	ix := &crlIndex{byIssuer: map[string][]*crlData{}}
	for _, src := range s.sources {
		if src.good == nil {
			ix.missing = append(ix.missing, src.name)
			continue
		}
		for _, d := range src.good {
			ix.byIssuer[string(d.rawIssuer)] = append(ix.byIssuer[string(d.rawIssuer)], d)
		}
	}
	s.crls.Store(ix)
}

func (s *Set) readSource(src *crlSource) ([]byte, error) {
	if !src.isURL {
		f, err := os.Open(src.name)
		if err != nil {
			return nil, fmt.Errorf("reading CRL file: %w", err)
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, maxCRLBytes+1))
		if err != nil {
			return nil, fmt.Errorf("reading CRL file %q: %w", src.name, err)
		}
		if len(data) > maxCRLBytes {
			return nil, fmt.Errorf("CRL file %q is larger than %d bytes", src.name, maxCRLBytes)
		}
		return data, nil
	}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodGet, src.name, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching CRL %q: %w", src.name, err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching CRL: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching CRL %q: HTTP status %s", src.name, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxCRLBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetching CRL %q: reading body: %w", src.name, err)
	}
	if len(data) > maxCRLBytes {
		return nil, fmt.Errorf("fetching CRL %q: body larger than %d bytes", src.name, maxCRLBytes)
	}
	return data, nil
}

// parseCRLs parses every CRL in data, checks that it can be used as a
// complete CRL, checks its signature against an anchor with the issuer's
// name (when there is one), and refuses a CRL older than the one it replaces.
// s.crlMu must be held.
func (s *Set) parseCRLs(src *crlSource, data []byte, now time.Time) ([]*crlData, error) {
	var ders [][]byte
	if bytes.Contains(data, []byte("-----BEGIN")) {
		rest := data
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type == "X509 CRL" || b.Type == "CRL" {
				ders = append(ders, b.Bytes)
			}
		}
	} else if len(data) > 0 {
		ders = append(ders, data)
	}
	if len(ders) == 0 {
		return nil, fmt.Errorf("parsing CRL from %q: %w", src.name, errNoCRL)
	}
	out := make([]*crlData, 0, len(ders))
	for i, der := range ders {
		d, err := s.parseCRL(src, der, now)
		if err != nil {
			if len(ders) > 1 {
				return nil, fmt.Errorf("CRL %d of %d from %q: %w", i+1, len(ders), src.name, err)
			}
			return nil, fmt.Errorf("CRL from %q: %w", src.name, err)
		}
		out = append(out, d)
	}
	return out, nil
}

func (s *Set) parseCRL(src *crlSource, der []byte, now time.Time) (*crlData, error) {
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("parsing: %w", err)
	}
	issuerName := rl.Issuer.String()
	if err := checkCRLExtensions(rl); err != nil {
		return nil, fmt.Errorf("issuer %q: %w", issuerName, err)
	}
	d := &crlData{
		source:     src.name,
		rawIssuer:  rl.RawIssuer,
		issuerName: issuerName,
		thisUpdate: rl.ThisUpdate,
		nextUpdate: rl.NextUpdate,
		number:     rl.Number,
		signed: &x509.RevocationList{
			SignatureAlgorithm:   rl.SignatureAlgorithm,
			Signature:            rl.Signature,
			RawTBSRevocationList: rl.RawTBSRevocationList,
		},
	}
	// An anchor with the issuer's name must have signed it; a CRL from an
	// issuer that is not an anchor is checked against the intermediate a
	// peer sends, the first time one is verified.
	var named bool
	for _, a := range s.anchors {
		if !bytes.Equal(a.RawSubject, rl.RawIssuer) {
			continue
		}
		named = true
		if rl.CheckSignatureFrom(a) == nil {
			d.signer.Store(a)
			break
		}
	}
	if named && d.signer.Load() == nil {
		return nil, fmt.Errorf("issuer %q: the signature does not verify with the key of the anchor of that name; the CRL was signed by a different CA", issuerName)
	}
	if !named {
		s.logger.Info("CRL issuer is not an anchor; its signature will be checked against the intermediate CA a peer sends",
			"trust_set", s.name, "source", src.name, "issuer", issuerName)
	}
	if !d.nextUpdate.IsZero() && !d.nextUpdate.After(d.thisUpdate) {
		return nil, fmt.Errorf("issuer %q: nextUpdate %s is not after thisUpdate %s", issuerName, d.nextUpdate.Format(dateFormat), d.thisUpdate.Format(dateFormat))
	}
	for _, old := range src.good {
		if !bytes.Equal(old.rawIssuer, d.rawIssuer) {
			continue
		}
		if d.thisUpdate.Before(old.thisUpdate) || (d.number != nil && old.number != nil && d.number.Cmp(old.number) < 0) {
			return nil, fmt.Errorf("issuer %q: CRL issued %s is older than the one already held (issued %s); refusing to roll back",
				issuerName, d.thisUpdate.Format(dateFormat), old.thisUpdate.Format(dateFormat))
		}
	}
	if d.stale(now) {
		s.logger.Warn("CRL is past its nextUpdate; the CA has not published a newer one",
			"trust_set", s.name, "source", src.name, "issuer", issuerName, "next_update", d.nextUpdate)
	}

	entries := rl.RevokedCertificateEntries
	order := make([]int, len(entries))
	for i := range order {
		order[i] = i
	}
	for _, e := range entries {
		for _, ext := range e.Extensions {
			if ext.Critical && !ext.Id.Equal(oidEntryReasonCode) && !ext.Id.Equal(oidEntryInvalidityDate) {
				return nil, fmt.Errorf("issuer %q: entry for serial %s has an unsupported critical extension %s (indirect CRLs are not supported)",
					issuerName, e.SerialNumber.Text(16), ext.Id)
			}
		}
	}
	slices.SortFunc(order, func(a, b int) int { return entries[a].SerialNumber.Cmp(entries[b].SerialNumber) })
	d.serials = make([]*big.Int, 0, len(entries))
	d.entries = make([]crlEntry, 0, len(entries))
	for _, i := range order {
		e := entries[i]
		if n := len(d.serials); n > 0 && d.serials[n-1].Cmp(e.SerialNumber) == 0 {
			continue
		}
		d.serials = append(d.serials, e.SerialNumber)
		d.entries = append(d.entries, crlEntry{revokedAt: e.RevocationTime, reason: e.ReasonCode})
	}
	return d, nil
}

// checkCRLExtensions refuses CRLs that are not a complete list of the
// issuer's revocations: delta CRLs, CRLs limited to some reasons, indirect
// CRLs, and CRLs with critical extensions this package does not understand
// (RFC 5280 section 5.2 says such a CRL must not be used).
func checkCRLExtensions(rl *x509.RevocationList) error {
	for _, ext := range rl.Extensions {
		switch {
		case ext.Id.Equal(oidDeltaCRLIndicator):
			return errors.New("it is a delta CRL; configure the issuer's full CRL")
		case ext.Id.Equal(oidIssuingDistributionPoint):
			if err := checkIssuingDistributionPoint(ext.Value); err != nil {
				return err
			}
		case ext.Id.Equal(oidCRLNumber), ext.Id.Equal(oidAuthorityKeyIdentifier):
		case ext.Critical:
			return fmt.Errorf("it has an unsupported critical extension %s", ext.Id)
		}
	}
	return nil
}

// checkIssuingDistributionPoint parses the RFC 5280 section 5.2.5 extension
// just far enough to refuse onlySomeReasons [3] and indirectCRL [4] TRUE.
// A CRL partitioned by distribution point or by certificate kind is fine as
// long as every partition is configured, since a serial is revoked when any
// CRL from its issuer lists it.
func checkIssuingDistributionPoint(value []byte) error {
	var seq asn1.RawValue
	if rest, err := asn1.Unmarshal(value, &seq); err != nil || len(rest) > 0 || seq.Tag != asn1.TagSequence {
		return errors.New("it has a malformed issuing distribution point extension")
	}
	rest := seq.Bytes
	for len(rest) > 0 {
		var f asn1.RawValue
		var err error
		rest, err = asn1.Unmarshal(rest, &f)
		if err != nil {
			return errors.New("it has a malformed issuing distribution point extension")
		}
		if f.Class != asn1.ClassContextSpecific {
			continue
		}
		if f.Tag == 3 || (f.Tag == 4 && len(f.Bytes) == 1 && f.Bytes[0] != 0) {
			return errUnsupportedCRLPartitioned
		}
	}
	return nil
}

func earliestNextUpdate(crls []*crlData) time.Time {
	var t time.Time
	for _, d := range crls {
		if !d.nextUpdate.IsZero() && (t.IsZero() || d.nextUpdate.Before(t)) {
			t = d.nextUpdate
		}
	}
	return t
}

// refreshLoop refreshes one source until the set is closed.
func (s *Set) refreshLoop(src *crlSource) {
	for {
		t := time.NewTimer(s.nextRefresh(src, time.Now()))
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		s.refreshSource(src)
	}
}

// nextRefresh is the wait before the next refresh of src: Refresh, or less
// when the held CRL's nextUpdate comes sooner.
func (s *Set) nextRefresh(src *crlSource, now time.Time) time.Duration {
	s.crlMu.Lock()
	next := earliestNextUpdate(src.good)
	s.crlMu.Unlock()
	wait := s.refresh
	if !next.IsZero() {
		if until := next.Sub(now); until > 0 && until < wait {
			wait = until
		}
	}
	return max(wait, minRefresh)
}

// SourceStatus describes one CRL source, for diagnostics and readiness.
type SourceStatus struct {
	// Source is the file path or URL.
	Source string
	// Loaded reports whether a good copy is held.
	Loaded bool
	// Issuers names the CAs whose CRLs the good copy holds.
	Issuers []string
	// ThisUpdate is the earliest thisUpdate of the CRLs held.
	ThisUpdate time.Time
	// NextUpdate is the earliest nextUpdate of the CRLs held; zero if none
	// states one.
	NextUpdate time.Time
	// LastAttempt is when the source was last read or fetched.
	LastAttempt time.Time
	// LastError is the error of the last attempt, or nil if it succeeded.
	LastError error
}

// Status describes each CRL source in configuration order. It is safe for
// concurrent use.
func (s *Set) Status() []SourceStatus {
	s.crlMu.Lock()
	defer s.crlMu.Unlock()
	out := make([]SourceStatus, 0, len(s.sources))
	for _, src := range s.sources {
		st := SourceStatus{Source: src.name, Loaded: src.good != nil, LastAttempt: src.lastAttempt, LastError: src.lastErr}
		for _, d := range src.good {
			st.Issuers = append(st.Issuers, d.issuerName)
			if st.ThisUpdate.IsZero() || d.thisUpdate.Before(st.ThisUpdate) {
				st.ThisUpdate = d.thisUpdate
			}
		}
		st.NextUpdate = earliestNextUpdate(src.good)
		out = append(out, st)
	}
	return out
}

// describeSources lists source names for a Detail sentence.
func describeSources(names []string) string {
	return strings.Join(names, ", ")
}

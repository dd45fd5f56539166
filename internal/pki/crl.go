package pki

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultCRLValidity is the CRL lifetime used when CRL is given zero.
const DefaultCRLValidity = 7 * 24 * time.Hour

type reasonName struct {
	code int
	name string
}

// reasonNames are the RFC 5280 section 5.3.1 CRLReason values a CA may put
// in a full CRL. 7 is unassigned, and removeFromCRL (8) belongs only in
// delta CRLs, so both are refused.
var reasonNames = []reasonName{
	{0, "unspecified"},
	{1, "keyCompromise"},
	{2, "cACompromise"},
	{3, "affiliationChanged"},
	{4, "superseded"},
	{5, "cessationOfOperation"},
	{6, "certificateHold"},
	{9, "privilegeWithdrawn"},
	{10, "aACompromise"},
}

func validReasons() string {
	names := make([]string, 0, len(reasonNames))
	for _, r := range reasonNames {
		names = append(names, fmt.Sprintf("%s (%d)", r.name, r.code))
	}
	return strings.Join(names, ", ")
}

// ParseReason parses an RFC 5280 revocation reason given by name
// (case-insensitive, for example "keyCompromise") or by number. The empty
// string means unspecified (0). Unknown values are an error listing the
// valid ones.
func ParseReason(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, numErr := strconv.Atoi(s)
	for _, r := range reasonNames {
		if (numErr == nil && r.code == n) || strings.EqualFold(r.name, s) {
			return r.code, nil
		}
	}
	return 0, fmt.Errorf("%w: revocation reason %q; valid reasons are %s", ErrInvalidOption, s, validReasons())
}

// ReasonName returns the RFC 5280 name of a revocation reason code, or the
// number itself if it has none.
func ReasonName(code int) string {
	for _, r := range reasonNames {
		if r.code == code {
			return r.name
		}
	}
	return strconv.Itoa(code)
}

// FormatSerial renders a serial number as lowercase hex without separators,
// the form used in index.json and accepted by ParseSerial.
func FormatSerial(serial *big.Int) string {
	return serial.Text(16)
}

// ParseSerial parses a certificate serial number written in hex, in any of
// the forms tools print: plain ("3a5f0c"), with a "0x" prefix, colon
// separated as `openssl x509 -text` shows it ("3a:5f:0c"), or as
// `openssl x509 -serial` prints it ("serial=3A5F0C"). Case does not matter.
// Decimal is deliberately not accepted: "12" would be ambiguous, and every
// tool that shows serials shows hex. The result must be positive and at most
// 20 octets (RFC 5280 section 4.1.2.2).
func ParseSerial(s string) (*big.Int, error) {
	orig := s
	s = strings.TrimSpace(s)
	if len(s) >= 7 && strings.EqualFold(s[:7], "serial=") {
		s = s[7:]
	}
	if len(s) >= 2 && (s[:2] == "0x" || s[:2] == "0X") {
		s = s[2:]
	}
	if strings.Contains(s, ":") {
		groups := strings.Split(s, ":")
		for _, g := range groups {
			if len(g) < 1 || len(g) > 2 {
				return nil, fmt.Errorf("%w: %q: colon-separated groups must be one or two hex digits", ErrBadSerial, orig)
			}
		}
		s = strings.Join(groups, "")
	}
	if s == "" {
		return nil, fmt.Errorf("%w: %q is empty", ErrBadSerial, orig)
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return nil, fmt.Errorf("%w: %q is not hex (write serials as hex, for example 3a:5f:0c or 0x3a5f0c)", ErrBadSerial, orig)
		}
	}
	n, ok := new(big.Int).SetString(s, 16)
	if !ok {
		return nil, fmt.Errorf("%w: %q is not hex", ErrBadSerial, orig)
	}
	if n.Sign() <= 0 || n.BitLen() > 160 {
		return nil, fmt.Errorf("%w: %q must be positive and at most 20 octets", ErrBadSerial, orig)
	}
	return n, nil
}

// Revoke marks a certificate the CA issued as revoked at the given time
// (zero means now) for an RFC 5280 reason code (see ParseReason). A serial
// not in the index is ErrUnknownSerial; one already revoked is
// ErrAlreadyRevoked. The revocation shows in the next CRL.
func (ca *CA) Revoke(serial *big.Int, reason int, at time.Time) error {
	if serial == nil {
		return fmt.Errorf("revoking: %w: nil serial", ErrBadSerial)
	}
	if !slices.ContainsFunc(reasonNames, func(r reasonName) bool { return r.code == reason }) {
		return fmt.Errorf("revoking %s: %w: reason code %d; valid reasons are %s", FormatSerial(serial), ErrInvalidOption, reason, validReasons())
	}
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC().Truncate(time.Second)
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ix, err := loadIndex(ca.Dir)
	if err != nil {
		return err
	}
	e := ix.find(serial)
	if e == nil {
		return fmt.Errorf("revoking %s in CA %q: %w", FormatSerial(serial), ca.Dir, ErrUnknownSerial)
	}
	if e.RevokedAt != nil {
		return fmt.Errorf("revoking %s (%s): %w at %s", e.Serial, e.Subject, ErrAlreadyRevoked, e.RevokedAt.Format(time.RFC3339))
	}
	e.RevokedAt = &at
	e.Reason = &reason
	if err := ix.save(ca.Dir); err != nil {
		return fmt.Errorf("revoking %s: %w", e.Serial, err)
	}
	return nil
}

// CRL builds and signs a PEM "X509 CRL" listing every revoked certificate in
// the index, valid from now for nextUpdate (zero means DefaultCRLValidity),
// with the next CRL number, which it records in the index. If the index
// cannot be updated no CRL is returned, so numbers never repeat.
func (ca *CA) CRL(nextUpdate time.Duration) ([]byte, error) {
	if nextUpdate == 0 {
		nextUpdate = DefaultCRLValidity
	}
	if nextUpdate < 0 {
		return nil, fmt.Errorf("%w: CRL validity %s; it must be positive", ErrInvalidOption, nextUpdate)
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ix, err := loadIndex(ca.Dir)
	if err != nil {
		return nil, err
	}
	var revoked []x509.RevocationListEntry
	for _, e := range ix.Issued {
		if e.RevokedAt == nil {
			continue
		}
		serial, err := ParseSerial(e.Serial)
		if err != nil {
			return nil, fmt.Errorf("building CRL: %w: entry %q: %v", ErrCorruptIndex, e.Serial, err)
		}
		entry := x509.RevocationListEntry{SerialNumber: serial, RevocationTime: *e.RevokedAt}
		if e.Reason != nil {
			entry.ReasonCode = *e.Reason
		}
		revoked = append(revoked, entry)
	}
	now := time.Now().UTC().Truncate(time.Second)
	number := ix.CRLNumber + 1
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(number),
		ThisUpdate:                now,
		NextUpdate:                now.Add(nextUpdate),
		RevokedCertificateEntries: revoked,
	}, ca.Cert, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("signing CRL %d for CA %q: %w", number, ca.Dir, err)
	}
	ix.CRLNumber = number
	if err := ix.save(ca.Dir); err != nil {
		return nil, fmt.Errorf("recording CRL number %d: %w", number, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), nil
}

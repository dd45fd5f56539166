package trust

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// ocspCache holds one answer per leaf certificate and coalesces concurrent
// queries for the same certificate.
type ocspCache struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]*ocspEntry
}

// ocspEntry is one cached or in-flight query. res and expires are written
// once, before done is closed, and only read after it is.
type ocspEntry struct {
	done    chan struct{}
	res     ocspResult
	expires time.Time
}

// ocspResult is an OCSP answer, or err when there was no usable one.
type ocspResult struct {
	status     int // ocsp.Good, ocsp.Revoked or ocsp.Unknown
	revokedAt  time.Time
	reason     int
	nextUpdate time.Time
	responder  string
	err        error
}

// usableAt reports whether a cached result still answers for time now.
func (r *ocspResult) usableAt(now time.Time) bool {
	return r.err != nil || r.nextUpdate.IsZero() || !now.After(r.nextUpdate)
}

// ocspStatus returns the OCSP answer for leaf, issued by issuer, from the
// cache or from one query shared by all concurrent callers.
func (s *Set) ocspStatus(leaf, issuer *x509.Certificate, now time.Time) ocspResult {
	key := sha256.Sum256(leaf.Raw)
	c := &s.ocsp
	c.mu.Lock()
	if e := c.entries[key]; e != nil {
		select {
		case <-e.done:
			if time.Now().Before(e.expires) && e.res.usableAt(now) {
				c.mu.Unlock()
				return e.res
			}
		default:
			c.mu.Unlock()
			select {
			case <-e.done:
				return e.res
			case <-s.ctx.Done():
				return ocspResult{err: fmt.Errorf("waiting for OCSP answer: %w", s.ctx.Err())}
			}
		}
	}
	if c.entries == nil {
		c.entries = map[[sha256.Size]byte]*ocspEntry{}
	}
	c.evictLocked(time.Now())
	e := &ocspEntry{done: make(chan struct{})}
	c.entries[key] = e
	c.mu.Unlock()

	defer close(e.done)
	e.res = s.queryOCSP(leaf, issuer, now)
	switch {
	case e.res.err != nil:
		e.expires = time.Now().Add(ocspFailureTTL)
	case e.res.nextUpdate.IsZero():
		e.expires = time.Now().Add(ocspNoNextUpdateTTL)
	default:
		e.expires = e.res.nextUpdate
	}
	return e.res
}

// evictLocked keeps the cache bounded: first expired answers go, then, if it
// is still full, arbitrary finished ones. c.mu must be held.
func (c *ocspCache) evictLocked(now time.Time) {
	if len(c.entries) < ocspMaxEntries {
		return
	}
	for k, e := range c.entries {
		select {
		case <-e.done:
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		default:
		}
	}
	for k, e := range c.entries {
		if len(c.entries) < ocspMaxEntries*9/10 {
			return
		}
		select {
		case <-e.done:
			delete(c.entries, k)
		default:
		}
	}
}

// queryOCSP asks the responder about leaf and checks the answer: signed by
// issuer or by a responder certificate issuer delegated OCSP signing to, for
// this serial, and not out of date.
func (s *Set) queryOCSP(leaf, issuer *x509.Certificate, now time.Time) ocspResult {
	responder := s.ocspResponder
	if responder == "" {
		for _, u := range leaf.OCSPServer {
			if checkHTTPURL(u) == nil {
				responder = u
				break
			}
		}
	}
	if responder == "" {
		return ocspResult{err: errors.New("the certificate names no OCSP responder (Authority Information Access) and none is configured")}
	}
	s.stats.ocspQueries.Add(1)
	r, err := s.fetchOCSP(responder, leaf, issuer, now)
	if err != nil {
		s.stats.ocspKO.Add(1)
		s.logger.Warn("OCSP query failed", "trust_set", s.name, "responder", responder,
			"subject", leaf.Subject.String(), "serial", leaf.SerialNumber.Text(16), "error", err)
		return ocspResult{responder: responder, err: err}
	}
	return ocspResult{
		status:     r.Status,
		revokedAt:  r.RevokedAt,
		reason:     r.RevocationReason,
		nextUpdate: r.NextUpdate,
		responder:  responder,
	}
}

func (s *Set) fetchOCSP(responder string, leaf, issuer *x509.Certificate, now time.Time) (*ocsp.Response, error) {
	body, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		return nil, fmt.Errorf("building OCSP request: %w", err)
	}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, responder, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building OCSP request for %q: %w", responder, err)
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	req.Header.Set("Accept", "application/ocsp-response")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("querying OCSP responder: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("querying OCSP responder %q: HTTP status %s", responder, resp.Status)
	}
	der, err := io.ReadAll(io.LimitReader(resp.Body, maxOCSPBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading OCSP response from %q: %w", responder, err)
	}
	if len(der) > maxOCSPBytes {
		return nil, fmt.Errorf("OCSP response from %q is larger than %d bytes", responder, maxOCSPBytes)
	}
	r, err := ocsp.ParseResponseForCert(der, leaf, issuer)
	if err != nil {
		return nil, fmt.Errorf("parsing OCSP response from %q: %w", responder, err)
	}
	// x/crypto/ocsp checks that issuer signed a delegated responder
	// certificate but not that it may sign OCSP responses (RFC 6960 section
	// 4.2.2.2), so check the usage and dates here.
	if rc := r.Certificate; rc != nil && !bytes.Equal(rc.Raw, issuer.Raw) {
		if !slices.Contains(rc.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
			return nil, fmt.Errorf("OCSP response from %q is signed by %q, which lacks the OCSPSigning extended key usage", responder, rc.Subject.String())
		}
		if outsideValidity(rc, now) {
			return nil, fmt.Errorf("OCSP response from %q is signed by %q, which is not valid at %s", responder, rc.Subject.String(), now.UTC().Format(dateFormat))
		}
	}
	if !r.NextUpdate.IsZero() && now.After(r.NextUpdate) {
		return nil, fmt.Errorf("OCSP response from %q is out of date: its nextUpdate was %s", responder, r.NextUpdate.UTC().Format(dateFormat))
	}
	if r.ThisUpdate.After(time.Now().Add(clockSkew)) {
		return nil, fmt.Errorf("OCSP response from %q has thisUpdate %s in the future; check the clocks", responder, r.ThisUpdate.UTC().Format(dateFormat))
	}
	return r, nil
}

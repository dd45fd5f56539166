package trust

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for RevocationOptions.
const (
	// DefaultRefresh is how often CRL files are re-read and CRL URLs
	// re-fetched when RevocationOptions.Refresh is zero.
	DefaultRefresh = 10 * time.Minute
	// DefaultFetchTimeout bounds each CRL or OCSP request made with the
	// client NewSet builds when RevocationOptions.HTTPClient is nil.
	DefaultFetchTimeout = 10 * time.Second
)

const (
	// minRefresh stops a CRL whose nextUpdate has just passed from turning
	// the refresher into a busy loop.
	minRefresh = 10 * time.Millisecond
	// maxCRLBytes bounds a CRL download or file; large public CRLs are a few
	// megabytes.
	maxCRLBytes = 64 << 20
	// maxOCSPBytes bounds an OCSP response body.
	maxOCSPBytes = 1 << 20
	// ocspFailureTTL is how long a failed OCSP query is remembered, so a dead
	// responder costs one timeout per certificate per interval rather than
	// one per request.
	ocspFailureTTL = 5 * time.Second
	// ocspNoNextUpdateTTL is how long a response without nextUpdate is
	// cached (RFC 6960 section 4.2.2.1: newer information is always
	// available).
	ocspNoNextUpdateTTL = time.Minute
	// ocspMaxEntries bounds the OCSP cache.
	ocspMaxEntries = 10000
	// clockSkew is the tolerance for an OCSP thisUpdate in the future.
	clockSkew = 5 * time.Minute
)

// RevocationOptions configures how a Set checks revocation. The zero value
// checks nothing. Whenever at least one CRL source or OCSP is configured, the
// set fails closed: a certificate whose revocation status cannot be
// established is refused with ReasonRevocationUnavailable unless FailOpen is
// set.
type RevocationOptions struct {
	// CRLFiles are paths of CRL files, PEM ("X509 CRL" blocks, several
	// allowed) or DER.
	CRLFiles []string
	// CRLURLs are http or https URLs serving a CRL, PEM or DER.
	CRLURLs []string
	// Refresh is how often CRL files are re-read and CRL URLs re-fetched. A
	// source is also refreshed at its CRL's nextUpdate when that comes
	// sooner. It defaults to DefaultRefresh and must not be negative.
	Refresh time.Duration
	// OCSP enables OCSP checking of the leaf certificate.
	OCSP bool
	// OCSPResponder is the responder URL. If empty, the first http(s) URL in
	// the leaf's Authority Information Access extension is used.
	OCSPResponder string
	// FailOpen allows a certificate whose revocation status is unavailable
	// (no fresh CRL, OCSP unreachable or answering "unknown"); each such
	// event is logged and counted. The default, false, fails closed.
	FailOpen bool
	// HTTPClient fetches CRLs and queries OCSP. If nil, a client with a
	// DefaultFetchTimeout timeout and its own transport is used (never
	// http.DefaultClient). A client without a timeout can stall Verify on an
	// OCSP cache miss for as long as the responder does.
	HTTPClient *http.Client
	// Logger receives refresh failures and fail-open events. If nil, nothing
	// is logged.
	Logger *slog.Logger
}

// Stats are counters since the set was built.
type Stats struct {
	// RevocationOK counts verified chains in which nothing was revoked.
	RevocationOK uint64
	// RevocationRevoked counts chains refused because a certificate was
	// revoked.
	RevocationRevoked uint64
	// RevocationUnavailableFailOpen counts chains allowed although their
	// revocation status was unavailable.
	RevocationUnavailableFailOpen uint64
	// RevocationUnavailableFailClosed counts chains refused because their
	// revocation status was unavailable.
	RevocationUnavailableFailClosed uint64
	// CRLRefreshOK counts successful reads or fetches of a CRL source,
	// including the first one in NewSet.
	CRLRefreshOK uint64
	// CRLRefreshFailed counts failed reads, fetches, parses or signature
	// checks of a CRL source.
	CRLRefreshFailed uint64
	// OCSPQueries counts requests sent to OCSP responders.
	OCSPQueries uint64
	// OCSPFailures counts OCSP requests that gave no usable answer.
	OCSPFailures uint64
}

type counters struct {
	ok, revoked, failOpen, failClosed     atomic.Uint64
	crlOK, crlFailed, ocspQueries, ocspKO atomic.Uint64
}

// Set is a named trust set: immutable anchor certificates plus revocation
// data that a background refresher replaces atomically. All methods are safe
// for concurrent use.
type Set struct {
	name           string
	anchors        []*x509.Certificate
	roots          *x509.CertPool
	anchorSubjects string
	anyUsage       []x509.ExtKeyUsage

	failOpen      bool
	refresh       time.Duration
	ocspEnabled   bool
	ocspResponder string
	client        *http.Client
	logger        *slog.Logger

	sources []*crlSource
	// crlMu serialises updates of the sources' good copies and the
	// rebuilding of crls.
	crlMu sync.Mutex
	crls  atomic.Pointer[crlIndex]

	ocsp     ocspCache
	verified verifyCache

	stats counters

	ctx       context.Context
	cancel    context.CancelFunc
	lifeMu    sync.Mutex
	started   bool
	closed    bool
	refreshes sync.WaitGroup
}

// NewSet builds a trust set named name from anchor certificates, which may be
// roots, intermediates or both; a chain is trusted when it ends at any of
// them. rev may be nil for no revocation checking.
//
// NewSet reads every CRL file and fetches every CRL URL once before it
// returns. A source that cannot be read or whose CRL does not verify is not
// an error: it is logged, counted, shown by Status, and makes Verify fail
// closed (or open, if so configured) for certificates it might cover. NewSet
// fails only for a configuration that can never work: no anchors, a negative
// Refresh or a malformed URL.
func NewSet(name string, anchors []*x509.Certificate, rev *RevocationOptions) (*Set, error) {
	if len(anchors) == 0 {
		return nil, fmt.Errorf("trust set %q: no anchor certificates; add at least one CA certificate", name)
	}
	s := &Set{
		name:     name,
		roots:    x509.NewCertPool(),
		anyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		refresh:  DefaultRefresh,
		logger:   slog.New(slog.DiscardHandler),
	}
	subjects := make([]string, 0, len(anchors))
	for i, a := range anchors {
		if a == nil {
			return nil, fmt.Errorf("trust set %q: anchor %d is nil", name, i)
		}
		s.anchors = append(s.anchors, a)
		s.roots.AddCert(a)
		subjects = append(subjects, strconv.Quote(a.Subject.String()))
	}
	s.anchorSubjects = strings.Join(subjects, ", ")
	s.ctx, s.cancel = context.WithCancel(context.Background())

	if rev != nil {
		if err := s.configure(rev); err != nil {
			s.cancel()
			return nil, fmt.Errorf("trust set %q: %w", name, err)
		}
	}
	s.crls.Store(&crlIndex{})
	for _, src := range s.sources {
		s.refreshSource(src)
	}
	return s, nil
}

func (s *Set) configure(rev *RevocationOptions) error {
	if rev.Refresh < 0 {
		return fmt.Errorf("CRL refresh interval %s is negative; use a positive duration such as 10m", rev.Refresh)
	}
	if rev.Refresh > 0 {
		s.refresh = rev.Refresh
	}
	if rev.Logger != nil {
		s.logger = rev.Logger
	}
	s.failOpen = rev.FailOpen
	s.ocspEnabled = rev.OCSP
	s.client = rev.HTTPClient
	if s.client == nil {
		s.client = newHTTPClient()
	}
	for _, f := range rev.CRLFiles {
		if f == "" {
			return errors.New("empty CRL file path")
		}
		s.sources = append(s.sources, &crlSource{name: f})
	}
	for _, u := range rev.CRLURLs {
		if err := checkHTTPURL(u); err != nil {
			return fmt.Errorf("CRL URL: %w", err)
		}
		s.sources = append(s.sources, &crlSource{name: u, isURL: true})
	}
	if rev.OCSPResponder != "" {
		if !rev.OCSP {
			return errors.New("an OCSP responder is configured but OCSP is not enabled")
		}
		if err := checkHTTPURL(rev.OCSPResponder); err != nil {
			return fmt.Errorf("OCSP responder: %w", err)
		}
		s.ocspResponder = rev.OCSPResponder
	}
	return nil
}

func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parsing %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http or https URL", raw)
	}
	return nil
}

// newHTTPClient builds the per-set client for CRL and OCSP fetches. It has
// its own transport so that nothing else shares or mutates it.
func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout: DefaultFetchTimeout,
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: DefaultFetchTimeout}).DialContext,
			TLSHandshakeTimeout: DefaultFetchTimeout,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// Name returns the set's name.
func (s *Set) Name() string { return s.name }

// revocationConfigured reports whether Verify checks revocation at all.
func (s *Set) revocationConfigured() bool { return len(s.sources) > 0 || s.ocspEnabled }

// Verify checks chain (the leaf first, then any intermediates the peer sent,
// in any order) against the set's anchors at time now, then checks that the
// verified chain allows usage (x509.ExtKeyUsageAny skips that check), then
// checks revocation of each certificate in it below the anchor. It returns
// the verified chain, leaf first and anchor last, which the caller owns.
//
// Every error is a *Error. Verify fails closed: a chain is accepted only when
// it verifies, allows the usage, and nothing in it is revoked; missing or
// stale revocation data refuses it unless the set fails open. Verify is safe
// for concurrent use and does no I/O except an OCSP query when the cache has
// no fresh answer for the leaf; concurrent queries for one certificate are
// made once. Chains that verified before are remembered (keyed by their
// bytes, and only while every certificate in them is within its validity),
// so repeated calls for one peer skip the signature checks.
func (s *Set) Verify(chain []*x509.Certificate, usage x509.ExtKeyUsage, now time.Time) ([]*x509.Certificate, error) {
	if len(chain) == 0 || chain[0] == nil {
		return nil, &Error{Reason: ReasonUntrusted, Set: s.name, Detail: "the peer sent no certificate", Err: ErrNoCertificate}
	}
	leaf := chain[0]
	key := chainKey(chain)
	chains := s.verified.load(key, now)
	if chains == nil {
		opts := x509.VerifyOptions{Roots: s.roots, CurrentTime: now, KeyUsages: s.anyUsage}
		if len(chain) > 1 {
			opts.Intermediates = x509.NewCertPool()
			for _, c := range chain[1:] {
				if c != nil {
					opts.Intermediates.AddCert(c)
				}
			}
		}
		var err error
		chains, err = leaf.Verify(opts)
		if err != nil {
			return nil, s.classify(chain, now, err)
		}
		s.verified.store(key, chains)
	}
	var verified []*x509.Certificate
	var usageErr *Error
	for _, c := range chains {
		bad := usageFault(c, usage)
		if bad == nil {
			verified = c
			break
		}
		if usageErr == nil {
			usageErr = s.wrongUsage(leaf, bad, usage)
		}
	}
	if verified == nil {
		return nil, usageErr
	}
	if s.revocationConfigured() {
		if err := s.checkRevocation(verified, now); err != nil {
			return nil, err
		}
	}
	// The cache shares its chains; a copy keeps callers from altering them.
	return slices.Clone(verified), nil
}

// VerifyConnection returns a tls.Config.VerifyConnection callback that runs
// Verify on the peer's certificates for usage at the current time. It fails
// the handshake (closed) when the peer sent no certificate. Hostname checking
// is not its business: leave it to tls.Config (ServerName) or the caller.
func (s *Set) VerifyConnection(usage x509.ExtKeyUsage) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		_, err := s.Verify(cs.PeerCertificates, usage, time.Now())
		return err
	}
}

// Start begins refreshing CRL sources in the background: each is re-read or
// re-fetched every Refresh and at its CRL's nextUpdate when that is sooner.
// A failed refresh keeps the last good copy and is logged and counted. Start
// is idempotent and does nothing after Close.
func (s *Set) Start() {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.started || s.closed {
		return
	}
	s.started = true
	for _, src := range s.sources {
		s.refreshes.Go(func() { s.refreshLoop(src) })
	}
}

// Close stops the background refresh and cancels in-flight fetches and OCSP
// queries, and waits for the refreshers to return. Verify keeps working on
// the last data held; OCSP cache misses after Close find revocation
// unavailable. Close is idempotent.
func (s *Set) Close() {
	s.lifeMu.Lock()
	s.closed = true
	s.lifeMu.Unlock()
	s.cancel()
	s.refreshes.Wait()
}

// Stats returns a snapshot of the set's counters.
func (s *Set) Stats() Stats {
	return Stats{
		RevocationOK:                    s.stats.ok.Load(),
		RevocationRevoked:               s.stats.revoked.Load(),
		RevocationUnavailableFailOpen:   s.stats.failOpen.Load(),
		RevocationUnavailableFailClosed: s.stats.failClosed.Load(),
		CRLRefreshOK:                    s.stats.crlOK.Load(),
		CRLRefreshFailed:                s.stats.crlFailed.Load(),
		OCSPQueries:                     s.stats.ocspQueries.Load(),
		OCSPFailures:                    s.stats.ocspKO.Load(),
	}
}

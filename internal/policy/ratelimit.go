package policy

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/portcullis/portcullis/internal/problem"
)

// Scope says what a rule's budget is shared by. Every budget is also per
// API: a rule never counts requests to another API.
type Scope string

// The scopes.
const (
	// ScopeApplication gives each application its own budget. Requests
	// without an application (anonymous certificate holders) share one.
	ScopeApplication Scope = "application"
	// ScopeAPI gives the API one budget shared by all callers.
	ScopeAPI Scope = "api"
	// ScopeClientIP gives each client address its own budget. Requests
	// without an address share one.
	ScopeClientIP Scope = "client_ip"
)

func (s Scope) valid() bool {
	return s == ScopeApplication || s == ScopeAPI || s == ScopeClientIP
}

// Rule is a named rate limit with a scope.
type Rule struct {
	// Name identifies the policy in RateLimit-Policy and RateLimit headers
	// and in logs, e.g. the plan name "gold". It must be 1 to 64 printable
	// ASCII characters. Rules with different names never share a budget.
	Name string
	// Scope is ScopeApplication, ScopeAPI or ScopeClientIP.
	Scope Scope
	// Limit is the rate.
	Limit Limit
}

// Validate reports whether r can be enforced, naming the rule.
func (r Rule) Validate() error {
	if err := validPolicyName(r.Name); err != nil {
		return fmt.Errorf("rate limit %q: %w", r.Name, err)
	}
	if !r.Scope.valid() {
		return fmt.Errorf("rate limit %q: scope %q: must be %q, %q or %q", r.Name, r.Scope, ScopeApplication, ScopeAPI, ScopeClientIP)
	}
	if err := r.Limit.Validate(); err != nil {
		return fmt.Errorf("rate limit %q: %w", r.Name, err)
	}
	return nil
}

// QuotaRule is a named quota with a scope.
type QuotaRule struct {
	// Name identifies the quota in headers and logs, with the same
	// constraints as Rule.Name.
	Name string
	// Scope is ScopeApplication, ScopeAPI or ScopeClientIP.
	Scope Scope
	// Quota is the allowance per calendar window.
	Quota Quota
}

// Validate reports whether r can be enforced, naming the rule.
func (r QuotaRule) Validate() error {
	if err := validPolicyName(r.Name); err != nil {
		return fmt.Errorf("quota %q: %w", r.Name, err)
	}
	if !r.Scope.valid() {
		return fmt.Errorf("quota %q: scope %q: must be %q, %q or %q", r.Name, r.Scope, ScopeApplication, ScopeAPI, ScopeClientIP)
	}
	if err := r.Quota.Validate(); err != nil {
		return fmt.Errorf("quota %q: %w", r.Name, err)
	}
	return nil
}

// validPolicyName keeps names to what a structured-field String can carry
// (RFC 8941 §3.3.3: printable ASCII) and short enough for a header.
func validPolicyName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("name must be 1 to 64 characters")
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] > 0x7e {
			return fmt.Errorf("name must be printable ASCII")
		}
	}
	return nil
}

// Key is what a request's budgets are looked up by.
type Key struct {
	// API is the API called. Empty means the RateLimiter's own API.
	API string
	// Application is the authenticated application id, may be empty.
	Application string
	// ClientIP is the client's address, may be empty.
	ClientIP string
}

func (k *Key) part(s Scope) string {
	switch s {
	case ScopeApplication:
		return k.Application
	case ScopeClientIP:
		return k.ClientIP
	}
	return ""
}

// RateLimiter enforces an API's rate limits and quotas. It is immutable
// after NewRateLimiter and safe for concurrent use; the counters hold all
// mutable state.
//
// Every rate limit must allow a request, and then every quota must; the
// first rule that denies ends the check, so later rules spend nothing.
// Quotas are spent only when all rate limits allowed, so a throttled client
// does not burn its daily or monthly allowance, but a request denied by a
// quota has still spent a unit of each rate limit, as any rejected attempt
// does. Put the narrowest rules first.
type RateLimiter struct {
	api    string
	rules  []Rule
	quotas []QuotaRule
	rate   Counter
	quota  QuotaCounter
	// err is the first invalid rule; a limiter with one rejects every
	// request rather than enforce a subset.
	err  error
	bufs sync.Pool
}

// NewRateLimiter returns a RateLimiter for api with the given rules, which it
// copies, and counters. Rules are normally checked with Rule.Validate and
// QuotaRule.Validate when the configuration is compiled; a limiter built
// with an invalid rule, or with rules but no counter for them, fails closed:
// every Check returns a gateway.internal problem naming the rule in its log.
func NewRateLimiter(api string, rules []Rule, quotas []QuotaRule, c Counter, q QuotaCounter) *RateLimiter {
	l := &RateLimiter{
		api:    api,
		rules:  append([]Rule(nil), rules...),
		quotas: append([]QuotaRule(nil), quotas...),
		rate:   c,
		quota:  q,
	}
	l.bufs.New = func() any {
		b := make([]byte, 0, 256)
		return &b
	}
	l.err = l.validate(rules, quotas)
	return l
}

func (l *RateLimiter) validate(rules []Rule, quotas []QuotaRule) error {
	for _, r := range rules {
		if err := r.Validate(); err != nil {
			return err
		}
		if l.rate == nil {
			return fmt.Errorf("rate limit %q: no counter", r.Name)
		}
	}
	for _, r := range quotas {
		if err := r.Validate(); err != nil {
			return err
		}
		if l.quota == nil {
			return fmt.Errorf("quota %q: no quota counter", r.Name)
		}
	}
	return nil
}

// Check applies the limiter's own rules to a request from application at
// clientIP (either may be empty) to api (empty means the limiter's API).
// It is CheckWith without per-request rules.
func (l *RateLimiter) Check(h http.Header, api, application, clientIP string, now time.Time) error {
	return l.CheckWith(h, nil, nil, Key{API: api, Application: application, ClientIP: clientIP}, now)
}

// The header names, canonical so that they can be assigned to an
// http.Header directly.
const (
	hdrRateLimitPolicy = "Ratelimit-Policy"
	hdrRateLimit       = "Ratelimit"
	hdrRetryAfter      = "Retry-After"
)

// CheckWith applies the limiter's rules followed by extra (typically the
// plan of the caller's subscription, chosen per request) and then the
// limiter's quotas followed by extraQuotas. It returns nil when the request
// may proceed, or a *problem.Error with code ratelimit.exceeded or
// quota.exceeded (429) whose Log names the rule, its scope and key and the
// limit. An invalid extra rule fails closed with gateway.internal.
//
// On h it sets the RateLimit-Policy and RateLimit fields of
// draft-ietf-httpapi-ratelimit-headers-10 (§3 and §4: a List of one
// structured-field Item whose value is the policy name as a String, e.g.
// `"gold";q=100;w=1` and `"gold";r=42;t=1`) for the most restrictive policy:
// the one that denied, else the one with the fewest remaining requests (as
// §6 requires), preferring the later reset on a tie. For a rate limit, q and
// w are the rate per whole seconds, r the requests left in the burst and t
// the seconds until the burst is full again; for a quota, q is its limit, w
// the window's length and t the seconds until the window ends. When denied,
// it also sets Retry-After (RFC 9110 §10.2.3, in seconds rounded up, at
// least 1), and t equals it, as the draft asks.
//
// Keys are built in a pooled buffer and handed to the counters without a
// copy, so an allowed request allocates twice: the two header values share
// one string and one backing slice. New keys allocate inside the counter,
// and a denied request allocates its problem.
func (l *RateLimiter) CheckWith(h http.Header, extra []Rule, extraQuotas []QuotaRule, key Key, now time.Time) error {
	if l.err != nil {
		return l.misconfigured(l.err, key)
	}
	if len(extra) > 0 || len(extraQuotas) > 0 {
		if err := l.validate(extra, extraQuotas); err != nil {
			return l.misconfigured(err, key)
		}
	}
	if len(l.rules)+len(extra)+len(l.quotas)+len(extraQuotas) == 0 {
		return nil
	}
	if key.API == "" {
		key.API = l.api
	}
	bp := l.bufs.Get().(*[]byte)
	b := (*bp)[:0]
	defer func() {
		*bp = b[:0]
		l.bufs.Put(bp)
	}()

	var best report
	for i := range len(l.rules) + len(extra) {
		r := ruleAt(l.rules, extra, i)
		b = appendKey(b[:0], 'r', r.Name, r.Scope, &key)
		d := l.rate.Take(unsafe.String(unsafe.SliceData(b), len(b)), r.Limit, now)
		if !d.Allowed {
			rep := rateReport(r, d.Remaining, d.RetryAfter)
			b = rep.writeHeaders(h, b[:0], true)
			return &problem.Error{
				Code:   problem.CodeRateLimitExceeded,
				Detail: "Too many requests: wait for the time given in Retry-After before retrying.",
				Log: []any{
					"rule", r.Name, "scope", string(r.Scope), "api", key.API, "key", key.part(r.Scope),
					"limit", r.Limit.String(), "retry_after", d.RetryAfter,
				},
			}
		}
		best.consider(rateReport(r, d.Remaining, d.Reset))
	}
	for i := range len(l.quotas) + len(extraQuotas) {
		r := ruleAt(l.quotas, extraQuotas, i)
		b = appendKey(b[:0], 'q', r.Name, r.Scope, &key)
		d := l.quota.Spend(unsafe.String(unsafe.SliceData(b), len(b)), r.Quota, now)
		if !d.Allowed {
			rep := quotaReport(r, 0, d.Reset, now)
			b = rep.writeHeaders(h, b[:0], true)
			return &problem.Error{
				Code:   problem.CodeQuotaExceeded,
				Detail: "The quota for this period is used up: wait for the time given in Retry-After before retrying.",
				Log: []any{
					"rule", r.Name, "scope", string(r.Scope), "api", key.API, "key", key.part(r.Scope),
					"quota", r.Quota.String(), "reset", d.Reset,
				},
			}
		}
		best.consider(quotaReport(r, d.Remaining, d.Reset, now))
	}
	b = best.writeHeaders(h, b[:0], false)
	return nil
}

func (l *RateLimiter) misconfigured(err error, key Key) error {
	return &problem.Error{
		Code:   problem.CodeInternal,
		Detail: "The gateway's rate limits for this API are misconfigured.",
		Cause:  err,
		Log:    []any{"api", key.API, "reason", "invalid rate limit or quota rule"},
	}
}

// ruleAt indexes the concatenation of a and b without building it.
func ruleAt[T any](a, b []T, i int) *T {
	if i < len(a) {
		return &a[i]
	}
	return &b[i-len(a)]
}

// appendKey writes an unambiguous counter key: kind, then each part as a
// decimal length and the bytes, so that no name or id can be crafted to
// collide with another key, e.g. "r|4:gold|a|5:api-a|6:app-17".
func appendKey(b []byte, kind byte, name string, scope Scope, k *Key) []byte {
	b = append(b, kind, '|')
	b = appendPart(b, name)
	switch scope {
	case ScopeApplication:
		b = append(b, "a|"...)
	case ScopeClientIP:
		b = append(b, "i|"...)
	default:
		b = append(b, "p|"...)
	}
	b = appendPart(b, k.API)
	if scope != ScopeAPI {
		b = appendPart(b, k.part(scope))
	}
	return b
}

func appendPart(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	b = append(b, s...)
	return append(b, '|')
}

// report is one policy's state in header terms, all in whole units.
type report struct {
	name       string
	q, w, r, t int64
	set        bool
}

func rateReport(r *Rule, remaining int, reset time.Duration) report {
	w := ceilSeconds(r.Limit.Period)
	q := int64(r.Limit.Rate)
	if r.Limit.Period%time.Second != 0 {
		// The draft's window has whole seconds (§2.3); scale the rate to
		// the rounded-up window.
		q = int64(float64(r.Limit.Rate) * float64(time.Duration(w)*time.Second) / float64(r.Limit.Period))
	}
	return report{name: r.Name, q: q, w: w, r: int64(remaining), t: ceilSeconds(reset)}
}

func quotaReport(r *QuotaRule, remaining int64, reset time.Duration, now time.Time) report {
	start, end, _ := r.Quota.Window.bounds(now)
	return report{name: r.Name, q: r.Quota.Limit, w: ceilSeconds(end.Sub(start)), r: remaining, t: ceilSeconds(reset)}
}

// consider keeps the more restrictive of the current and c.
func (p *report) consider(c report) {
	if !p.set || c.r < p.r || (c.r == p.r && c.t > p.t) {
		*p = c
		p.set = true
	}
}

// writeHeaders sets the RateLimit fields (and Retry-After when denied) on
// h. Both values are formatted into b and converted with one allocation,
// then placed in one two-element slice, capped so an append by a later
// stage copies instead of overwriting its neighbour.
func (p *report) writeHeaders(h http.Header, b []byte, denied bool) []byte {
	if h == nil || (!p.set && !denied) {
		return b
	}
	b = appendSFString(b, p.name)
	b = append(b, ";q="...)
	b = strconv.AppendInt(b, p.q, 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, p.w, 10)
	split := len(b)
	b = appendSFString(b, p.name)
	b = append(b, ";r="...)
	b = strconv.AppendInt(b, p.r, 10)
	b = append(b, ";t="...)
	t := p.t
	if denied {
		t = max(t, 1)
	}
	b = strconv.AppendInt(b, t, 10)
	s := string(b)
	if denied {
		v := make([]string, 3)
		v[0], v[1], v[2] = s[:split], s[split:], strconv.FormatInt(t, 10)
		h[hdrRateLimitPolicy], h[hdrRateLimit], h[hdrRetryAfter] = v[0:1:1], v[1:2:2], v[2:3:3]
		return b
	}
	v := make([]string, 2)
	v[0], v[1] = s[:split], s[split:]
	h[hdrRateLimitPolicy], h[hdrRateLimit] = v[0:1:1], v[1:2:2]
	return b
}

// appendSFString writes s as an RFC 8941 §3.3.3 String; validPolicyName
// has ensured it holds printable ASCII only.
func appendSFString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// ceilSeconds rounds d up to whole seconds, as delay-seconds values must
// not promise a retry sooner than the limiter allows.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

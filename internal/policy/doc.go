// Package policy enforces an API's traffic policies in the data plane: rate
// limits (GCRA) and calendar quotas with the IETF RateLimit header fields,
// IP allow and deny lists, CORS, and request and response header rules.
//
// Every policy is compiled once per configuration snapshot by its
// constructor (NewRateLimiter, NewIPRules, NewCORS, NewHeaderRules), which
// rejects bad settings with an error naming the entry, and is immutable and
// safe for concurrent use afterwards; the hot path only reads it and
// allocates little (each method's comment says what). Mutable state lives
// behind the Counter and QuotaCounter interfaces, whose in-memory
// implementations bound their memory by forgetting keys whose state is the
// same as a new key's.
//
// Policies fail closed: an unparsable client address is denied, an invalid
// limit denies, a header value that would inject a line break is dropped.
// A rejection is a *problem.Error (ratelimit.exceeded, quota.exceeded,
// ip.denied, cors.origin_denied) with a client-safe Detail and the
// operator's diagnosis in Log; the caller writes it.
package policy

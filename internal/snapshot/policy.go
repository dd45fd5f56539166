package snapshot

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/auth"
	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/policy"
	"github.com/portcullis/portcullis/internal/problem"
)

// apiPolicies are an API's compiled policy stages. Every field is nil when
// the API does not use it, so the request path skips it for free.
type apiPolicies struct {
	ip       *policy.IPRules
	cors     *policy.CORSPolicy
	limiter  *policy.RateLimiter
	plans    bool                       // the API offers plans: a subscription is required
	subs     map[string]*subscription   // by application
	appIP    map[string]*policy.IPRules // by application
	appRules map[string][]policy.Rule   // application's own limit, without a subscription's
	reqHdr   *policy.HeaderRules
	respHdr  *policy.HeaderRules
}

// subscription is an application's compiled subscription to one API.
type subscription struct {
	suspended bool
	rules     []policy.Rule // the plan's rate limit plus the application's own
	quotas    []policy.QuotaRule
}

func limitOf(r *config.RateLimit) policy.Limit {
	return policy.Limit{Rate: r.Rate, Period: r.Period, Burst: r.Burst}
}

// policies compiles the API's IP, CORS, subscription, rate-limit and header
// stages.
func (c *compiler) policies(path string, a config.API, f config.File) *apiPolicies {
	p := &apiPolicies{}
	var err error
	if a.IP != nil {
		if p.ip, err = policy.NewIPRules(a.IP.Allow, a.IP.Deny); err != nil {
			c.add(path+".ip", "%v", err)
		}
	}
	if cr := a.CORS; cr != nil {
		p.cors, err = policy.NewCORS(policy.CORS{AllowOrigins: cr.AllowOrigins, AllowMethods: cr.AllowMethods, AllowHeaders: cr.AllowHeaders,
			ExposeHeaders: cr.ExposeHeaders, AllowCredentials: cr.AllowCredentials, MaxAge: cr.MaxAge})
		if err != nil {
			c.add(path+".cors", "%v", err)
		}
	}
	if p.reqHdr, err = headerRules(a.RequestHeaders); err != nil {
		c.add(path+".request_headers", "%v", err)
	}
	if p.respHdr, err = headerRules(a.ResponseHeaders); err != nil {
		c.add(path+".response_headers", "%v", err)
	}

	var apiRules []policy.Rule
	if a.RateLimit != nil {
		apiRules = append(apiRules, policy.Rule{Name: "api", Scope: policy.ScopeAPI, Limit: limitOf(a.RateLimit)})
	}
	sc := c.sc
	p.appIP, p.appRules = sc.appIP, sc.appRules
	p.plans = len(a.Plans) > 0
	p.subs = map[string]*subscription{}
	for _, s := range sc.subsByAPI[a.Name] {
		pl := sc.plans[s.Plan]
		sub := &subscription{suspended: s.State == "suspended", rules: append([]policy.Rule(nil), p.appRules[s.Application]...)}
		if pl.RateLimit != nil {
			sub.rules = append(sub.rules, policy.Rule{Name: pl.Name, Scope: policy.ScopeApplication, Limit: limitOf(pl.RateLimit)})
		}
		if q := pl.Quota; q != nil {
			sub.quotas = append(sub.quotas, policy.QuotaRule{Name: pl.Name + "-quota", Scope: policy.ScopeApplication, Quota: policy.Quota{Limit: q.Limit, Window: policy.QuotaWindow(q.Window)}})
		}
		for _, r := range sub.rules {
			if err := r.Validate(); err != nil {
				c.add("plans", "plan %q: %v", pl.Name, err)
			}
		}
		p.subs[s.Application] = sub
	}
	for _, r := range apiRules {
		if err := r.Validate(); err != nil {
			c.add(path+".rate_limit", "%v", err)
		}
	}
	if len(apiRules) > 0 || len(p.appRules) > 0 || len(p.subs) > 0 {
		p.limiter = policy.NewRateLimiter(config.Qualify(a.Tenant, a.Name), apiRules, nil, c.o.Counter, c.o.Quotas)
	}
	return p
}

func headerRules(rules []config.HeaderRule) (*policy.HeaderRules, error) {
	if len(rules) == 0 {
		return nil, nil
	}
	var out []policy.HeaderRule
	for _, r := range rules {
		switch {
		case r.Set != "":
			out = append(out, policy.HeaderRule{Op: "set", Name: r.Set, Value: r.Value})
		case r.Add != "":
			out = append(out, policy.HeaderRule{Op: "add", Name: r.Add, Value: r.Value})
		default:
			out = append(out, policy.HeaderRule{Op: "remove", Name: r.Remove})
		}
	}
	return policy.NewHeaderRules(out)
}

// beforeAuth runs the stages that need no identity: IP rules and CORS. A
// preflight is answered here (handled true).
func (p *apiPolicies) beforeAuth(w http.ResponseWriter, r *http.Request) (bool, error) {
	if p.ip != nil {
		if err := p.ip.Check(r.RemoteAddr); err != nil {
			return true, err
		}
	}
	if p.cors != nil && r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != "" {
		return p.cors.Handle(w, r)
	}
	return false, nil
}

// afterAuth runs the stages that need the caller's application: its IP
// rules, the subscription check and rate limits (which set the RateLimit
// headers on w).
func (p *apiPolicies) afterAuth(w http.ResponseWriter, r *http.Request, api string, x *Exchange, now time.Time) error {
	app, pr := "", x.Principal
	if pr != nil {
		app = pr.Application
	}
	if ipr := p.appIP[app]; ipr != nil {
		if err := ipr.Check(r.RemoteAddr); err != nil {
			return err
		}
	}
	var sub *subscription
	if p.plans {
		sub = p.subs[app]
		switch {
		case sub == nil:
			return &problem.Error{Code: problem.CodeSubscriptionMissing, Detail: "Your application has no subscription to this API.",
				Log: []any{"application", app, "reason", "no subscription", "fix", "add a subscription of this application to the API on one of its plans"}}
		case sub.suspended:
			return &problem.Error{Code: problem.CodeSubscriptionSuspended, Detail: "Your application's subscription to this API is suspended.",
				Log: []any{"application", app, "reason", "subscription suspended"}}
		}
	}
	if p.limiter == nil {
		return nil
	}
	rules, quotas := p.appRules[app], []policy.QuotaRule(nil)
	if sub != nil {
		rules, quotas = sub.rules, sub.quotas
	}
	err := p.limiter.CheckWith(w.Header(), rules, quotas, policy.Key{API: api, Application: app, ClientIP: clientIP(r.RemoteAddr)}, now)
	x.RateLimit = RateLimitAllowed
	var pe *problem.Error
	switch {
	case err == nil:
	case errors.As(err, &pe) && pe.Code == problem.CodeQuotaExceeded:
		x.RateLimit = RateLimitQuota
	default:
		x.RateLimit = RateLimitLimited
	}
	return err
}

func clientIP(remoteAddr string) string {
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return h
	}
	return remoteAddr
}

// vars are the values header rules may use.
func vars(r *http.Request, api string, pr *auth.Principal) *policy.Vars {
	v := &policy.Vars{ClientIP: clientIP(r.RemoteAddr), RequestID: r.Header.Get("X-Request-Id"), API: api}
	if pr != nil {
		v.Application, v.ClientCertSubject, v.ClientCertSHA256 = pr.Application, pr.Subject, pr.Fingerprint
		if pr.Cert == nil {
			v.ClientCertSubject = ""
		}
	}
	return v
}

// responseRules applies response header rules and, with a CORS policy,
// replaces the upstream's own CORS headers with the gateway's, just before
// the response headers are written.
type responseRules struct {
	http.ResponseWriter
	r     *http.Request
	rules *policy.HeaderRules
	cors  *policy.CORSPolicy
	v     *policy.Vars
	done  bool
}

func (rw *responseRules) apply() {
	if rw.done {
		return
	}
	rw.done = true
	h := rw.ResponseWriter.Header()
	if rw.cors != nil {
		for k := range h {
			if strings.HasPrefix(k, "Access-Control-") {
				delete(h, k)
			}
		}
		// Not a preflight (those never reach the upstream), so Handle only
		// sets the headers for an allowed origin.
		_, _ = rw.cors.Handle(rw.ResponseWriter, rw.r)
	}
	if rw.rules != nil {
		rw.rules.Apply(h, rw.v)
	}
}

func (rw *responseRules) WriteHeader(code int) {
	rw.apply()
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *responseRules) Write(b []byte) (int, error) {
	rw.apply()
	return rw.ResponseWriter.Write(b)
}

func (rw *responseRules) Flush() {
	rw.apply()
	http.NewResponseController(rw.ResponseWriter).Flush()
}

func (rw *responseRules) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

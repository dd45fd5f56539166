package snapshot

import (
	"fmt"
	"strings"

	"github.com/portcullis/portcullis/internal/auth"
	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/policy"
)

// scope is one tenant's share of a snapshot: its applications (and the
// indexes that resolve credentials to them), plans and subscriptions. An
// API is compiled against its own tenant's scope only, which is what keeps
// tenants apart on the request path: another tenant's certificate, key or
// client is simply not in the index.
type scope struct {
	tenant       string
	apps         []config.Application
	applications *auth.Applications
	clientApps   map[string]string
	appIP        map[string]*policy.IPRules
	appRules     map[string][]policy.Rule
	plans        map[string]config.Plan
	subsByAPI    map[string][]config.Subscription
	apiKeys      map[config.APIKeyPolicy]*auth.APIKeyAuth
}

// scope returns the tenant's scope, empty if the tenant has no resources
// besides the API being compiled.
func (c *compiler) scope(tenant string) *scope {
	tenant = config.TenantOf(tenant)
	sc := c.scopes[tenant]
	if sc == nil {
		sc = &scope{
			tenant:     tenant,
			clientApps: map[string]string{},
			appIP:      map[string]*policy.IPRules{},
			appRules:   map[string][]policy.Rule{},
			plans:      map[string]config.Plan{},
			subsByAPI:  map[string][]config.Subscription{},
			apiKeys:    map[config.APIKeyPolicy]*auth.APIKeyAuth{},
		}
		sc.applications, _ = auth.NewApplications(nil)
		c.scopes[tenant] = sc
	}
	return sc
}

// compileScopes splits the applications, plans and subscriptions by tenant
// and compiles each tenant's indexes and application policies once per
// snapshot; every API of the tenant shares them.
func (c *compiler) compileScopes(f config.File) {
	c.scopes = map[string]*scope{}
	c.clientTenants = map[string]string{}
	byTenant := map[string][]config.Application{}
	var order []string
	for i, app := range f.Applications {
		t := config.TenantOf(app.Tenant)
		if _, seen := byTenant[t]; !seen {
			order = append(order, t)
		}
		byTenant[t] = append(byTenant[t], app)
		sc := c.scope(t)
		if app.IP != nil {
			r, err := policy.NewIPRules(app.IP.Allow, app.IP.Deny)
			if err != nil {
				c.add(fmt.Sprintf("applications[%d].ip", i), "%v", err)
			} else {
				sc.appIP[app.ID] = r
			}
		}
		if app.RateLimit != nil {
			sc.appRules[app.ID] = []policy.Rule{{Name: "application", Scope: policy.ScopeApplication, Limit: limitOf(app.RateLimit)}}
		}
		if app.OAuth2 != nil {
			c.clientTenants[app.OAuth2.ClientID] = t
		}
	}
	for _, t := range order {
		c.compileApplications(c.scope(t), byTenant[t])
	}
	for _, pl := range f.Plans {
		c.scope(pl.Tenant).plans[pl.Name] = pl
	}
	for _, s := range f.Subscriptions {
		sc := c.scope(s.Tenant)
		sc.subsByAPI[s.API] = append(sc.subsByAPI[s.API], s)
	}
}

// tenantRoutes are the tenants' hosts and prefixes, which the router keeps
// for them alone.
func (c *compiler) tenantRoutes() []tenantRoute {
	var out []tenantRoute
	for _, t := range c.cfg.Tenants {
		tr := tenantRoute{prefix: normalizePrefix(t.PathPrefix)}
		for _, h := range t.Hosts {
			tr.hosts = append(tr.hosts, strings.ToLower(h))
		}
		if len(tr.hosts) > 0 || tr.prefix != "" {
			out = append(out, tr)
		}
	}
	return out
}

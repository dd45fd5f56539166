package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/admin"
	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/registry"
)

// DefaultTenant holds the resources declared in the configuration file
// without a tenant and those the admin API creates without naming another
// tenant.
const DefaultTenant = config.DefaultTenantName

// openStore opens the registry the configuration names ("sqlite:PATH",
// relative to the configuration file), or returns nil when it names none.
func openStore(f config.File, configPath string) (*registry.SQLiteStore, error) {
	if f.Store == "" {
		return nil, nil
	}
	path := strings.TrimPrefix(f.Store, "sqlite:")
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(configPath), path)
	}
	return registry.OpenSQLite(path)
}

// fileObjects converts the file's tenants and consumer-side resources into
// registry objects, so the admin API shows them (as file-managed) and
// refuses to edit them.
func fileObjects(f config.File) []registry.Object {
	objs := []registry.Object{}
	declared := false
	for _, t := range f.Tenants {
		declared = declared || t.Name == DefaultTenant
		objs = append(objs, registry.Tenant{Name: t.Name, Hosts: t.Hosts, PathPrefix: t.PathPrefix})
	}
	if !declared {
		objs = append(objs, registry.Tenant{Name: DefaultTenant, DisplayName: "Resources of the configuration file"})
	}
	for _, pl := range f.Plans {
		p := registry.Plan{Tenant: config.TenantOf(pl.Tenant), Name: pl.Name, Scopes: pl.Scopes}
		if r := pl.RateLimit; r != nil {
			p.RateLimit = &registry.RateLimit{Rate: r.Rate, Period: r.Period.String(), Burst: r.Burst}
		}
		if q := pl.Quota; q != nil {
			p.Quota = &registry.Quota{Limit: q.Limit, Window: registry.QuotaWindow(q.Window)}
		}
		objs = append(objs, p)
	}
	for _, a := range f.APIs {
		objs = append(objs, registry.API{Tenant: config.TenantOf(a.Tenant), Name: a.Name})
	}
	for _, a := range f.Applications {
		app := registry.Application{Tenant: config.TenantOf(a.Tenant), Name: a.ID, APIKeyHashes: a.APIKeys}
		for _, c := range a.Certificates {
			app.Certificates = append(app.Certificates, registry.CertificateRef{Fingerprint: c.Fingerprint, Issuer: c.Issuer, SubjectDN: c.SubjectDN, CN: c.CN, DNS: c.DNS, URI: c.URI})
		}
		if o := a.OAuth2; o != nil && len(o.AuthMethods) > 0 {
			app.OAuth2 = &registry.OAuth2Client{ClientID: o.ClientID, AuthMethods: o.AuthMethods, SecretHashes: o.SecretHashes}
		}
		objs = append(objs, app)
	}
	for _, s := range f.Subscriptions {
		state := registry.StateActive
		if s.State == "suspended" {
			state = registry.StateSuspended
		}
		objs = append(objs, registry.Subscription{Tenant: config.TenantOf(s.Tenant), Name: s.Application + "." + s.API, Application: s.Application, API: s.API, Plan: s.Plan, State: state})
	}
	return objs
}

// trustSetName is the configuration's name for a registry trust set:
// "tenant/name", which no file trust store can have.
func trustSetName(tenant, name string) string { return tenant + "/" + name }

// withStore applies the file's resources into the store and returns the
// configuration extended with the tenants, trust sets, APIs (their spec is
// an API block of the configuration, as JSON), applications, plans and
// subscriptions created through the admin API. The file stays
// authoritative for what it declares. A registry resource that does not fit
// (an invalid API spec, a reference to something undefined) makes the whole
// load fail, like a bad file: the running configuration keeps serving and
// the reason is logged.
func withStore(ctx context.Context, st registry.Store, f config.File) (config.File, error) {
	if _, err := st.ApplyFile(ctx, fileObjects(f)); err != nil {
		return f, fmt.Errorf("applying the configuration's resources to the registry: %w", err)
	}
	_, all, err := st.ReadAll(ctx)
	if err != nil {
		return f, fmt.Errorf("reading the registry: %w", err)
	}
	return mergeRegistry(f, all)
}

// mergeRegistry extends the file's configuration with the registry's
// resources (all of them, as ReadAll returns them).
func mergeRegistry(f config.File, all []registry.Resource) (config.File, error) {
	f.Tenants = append([]config.Tenant(nil), f.Tenants...)
	f.APIs = append([]config.API(nil), f.APIs...)
	f.Applications = append([]config.Application(nil), f.Applications...)
	f.Plans = append([]config.Plan(nil), f.Plans...)
	f.Subscriptions = append([]config.Subscription(nil), f.Subscriptions...)
	stores := make(map[string]config.TrustStore, len(f.TrustStores))
	for k, v := range f.TrustStores {
		stores[k] = v
	}
	f.TrustStores = stores

	// Certificates and trust sets first: APIs refer to them.
	pems := map[registry.Key]string{}
	for _, r := range all {
		if c, ok := r.Object.(registry.Certificate); ok {
			pems[c.Key()] = c.PEM
		}
	}
	sets := map[string]bool{}
	for _, r := range all {
		ts, ok := r.Object.(registry.TrustSet)
		if !ok {
			continue
		}
		store := config.TrustStore{RevocationPolicy: config.DefaultRevocationPolicy}
		for _, n := range ts.CertificateNames {
			pem, ok := pems[registry.Key{Kind: registry.KindCertificate, Tenant: ts.Tenant, Name: n}]
			if !ok {
				return f, fmt.Errorf("registry trust set %q of tenant %q names certificate %q, which does not exist", ts.Name, ts.Tenant, n)
			}
			store.Inline = append(store.Inline, config.InlineCertificates{Name: "registry certificate " + trustSetName(ts.Tenant, n), PEM: pem})
		}
		f.TrustStores[trustSetName(ts.Tenant, ts.Name)] = store
		sets[trustSetName(ts.Tenant, ts.Name)] = true
	}

	for _, r := range all {
		if r.ManagedBy != registry.ManagedByAPI {
			continue
		}
		switch o := r.Object.(type) {
		case registry.Tenant:
			f.Tenants = append(f.Tenants, config.Tenant{Name: o.Name, Hosts: o.Hosts, PathPrefix: o.PathPrefix})
		case registry.API:
			if len(o.Spec) == 0 {
				continue
			}
			api, probs := config.ParseAPI(fmt.Sprintf("registry api %q of tenant %q", o.Name, o.Tenant), o.Spec)
			if len(probs) > 0 {
				return f, fmt.Errorf("registry API %q of tenant %q has an invalid spec: %v", o.Name, o.Tenant, probs)
			}
			api.Name, api.Tenant = o.Name, o.Tenant
			resolveTrustSets(&api, sets)
			f.APIs = append(f.APIs, api)
		case registry.Application:
			app := config.Application{Tenant: o.Tenant, ID: o.Name, APIKeys: o.APIKeyHashes}
			for _, c := range o.Certificates {
				app.Certificates = append(app.Certificates, config.AppCertificate{Fingerprint: c.Fingerprint, Issuer: c.Issuer, SubjectDN: c.SubjectDN, CN: c.CN, DNS: c.DNS, URI: c.URI})
			}
			if c := o.OAuth2; c != nil {
				app.OAuth2 = &config.OAuth2Client{ClientID: c.ClientID, AuthMethods: c.AuthMethods, SecretHashes: c.SecretHashes}
			}
			f.Applications = append(f.Applications, app)
		case registry.Plan:
			pl := config.Plan{Tenant: o.Tenant, Name: o.Name, Scopes: o.Scopes}
			if r := o.RateLimit; r != nil {
				d, err := time.ParseDuration(r.Period)
				if err != nil {
					return f, fmt.Errorf("registry plan %q of tenant %q: rate_limit.period %q: %w", o.Name, o.Tenant, r.Period, err)
				}
				pl.RateLimit = &config.RateLimit{Rate: r.Rate, Period: d, Burst: r.Burst}
			}
			if q := o.Quota; q != nil {
				pl.Quota = &config.Quota{Limit: q.Limit, Window: string(q.Window)}
			}
			f.Plans = append(f.Plans, pl)
		case registry.Subscription:
			f.Subscriptions = append(f.Subscriptions, config.Subscription{Tenant: o.Tenant, Application: o.Application, API: o.API, Plan: o.Plan, State: string(o.State)})
		}
	}
	return f, nil
}

// resolveTrustSets points an API's trust references at its tenant's
// registry trust sets: a name that is one of them means that set; any other
// name means the file's trust store of that name.
func resolveTrustSets(a *config.API, sets map[string]bool) {
	tenant := config.TenantOf(a.Tenant)
	resolve := func(name string) string {
		if sets[trustSetName(tenant, name)] {
			return trustSetName(tenant, name)
		}
		return name
	}
	if a.MTLS != nil {
		m := *a.MTLS
		m.Trust = append(config.StringList(nil), m.Trust...)
		for i, n := range m.Trust {
			m.Trust[i] = resolve(n)
		}
		a.MTLS = &m
	}
	if a.Upstream.TLS.Trust != "" {
		a.Upstream.TLS.Trust = resolve(a.Upstream.TLS.Trust)
	}
	if a.OAuth2 != nil {
		o := *a.OAuth2
		o.Issuers = append([]config.TokenIssuer(nil), o.Issuers...)
		for i := range o.Issuers {
			if o.Issuers[i].Trust != "" {
				o.Issuers[i].Trust = resolve(o.Issuers[i].Trust)
			}
		}
		a.OAuth2 = &o
	}
}

// registryCheck is the admin API's check of a write before it is stored:
// the change is refused (422 admin.invalid, with the reasons) when it would
// make the gateway's configuration invalid, i.e. when the file merged with
// the registry as it would be after the write has problems it has not
// today. Without it a bad resource would be stored, every reload would fail
// on it, and one tenant's mistake would freeze every tenant's changes.
// Only the admin role may write API specs that name files on the gateway
// (keystores, keys, certificates): a tenant-admin could otherwise make the
// gateway present the operator's client certificate to a server of its
// choosing.
func registryCheck(configPath string, st registry.Store) func(context.Context, admin.Principal, registry.Object) error {
	return func(ctx context.Context, p admin.Principal, obj registry.Object) error {
		if a, ok := obj.(registry.API); ok && p.Role != admin.RoleAdmin && len(a.Spec) > 0 {
			if api, probs := config.ParseAPI("spec", a.Spec); len(probs) == 0 && len(config.Files(config.File{APIs: []config.API{api}}, "/")) > 0 {
				return errors.New("spec names files on the gateway (certificates, keys or keystores); only an admin may do that: ask one, or name a trust set of your tenant")
			}
		}
		_, f, probs := config.Check(configPath)
		if len(probs) > 0 {
			// The file itself is broken; its reload says so.
			return nil
		}
		_, all, err := st.ReadAll(ctx)
		if err != nil {
			return nil // Put reports the store's trouble itself.
		}
		before := mergedProblems(f, all)
		next := make([]registry.Resource, 0, len(all)+1)
		replaced := false
		for _, r := range all {
			if r.Object.Key() == obj.Key() {
				r.Object, replaced = obj, true
			}
			next = append(next, r)
		}
		if !replaced {
			next = append(next, registry.Resource{Object: obj, ManagedBy: registry.ManagedByAPI})
		}
		var added []string
		for _, p := range mergedProblems(f, next) {
			if !slices.Contains(before, p) {
				added = append(added, p)
			}
		}
		if len(added) > 0 {
			return fmt.Errorf("the gateway could not serve this change: %s", strings.Join(added, "; "))
		}
		return nil
	}
}

// mergedProblems are the problems of the file merged with the registry
// resources all, as text.
func mergedProblems(f config.File, all []registry.Resource) []string {
	merged, err := mergeRegistry(f, all)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, p := range config.Validate(config.WithDefaults(merged)) {
		out = append(out, p.Path+": "+p.Message)
	}
	return out
}

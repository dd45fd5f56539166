package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/registry"
)

// DefaultTenant holds the resources declared in the configuration file and
// those the admin API creates without naming another tenant. The data plane
// serves this tenant; per-tenant routing is not built yet.
const DefaultTenant = "default"

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

// fileObjects converts the file's consumer-side resources into registry
// objects, so the admin API shows them (as file-managed) and refuses to edit
// them.
func fileObjects(f config.File) []registry.Object {
	objs := []registry.Object{registry.Tenant{Name: DefaultTenant, DisplayName: "Resources of the configuration file"}}
	for _, pl := range f.Plans {
		p := registry.Plan{Tenant: DefaultTenant, Name: pl.Name, Scopes: pl.Scopes}
		if r := pl.RateLimit; r != nil {
			p.RateLimit = &registry.RateLimit{Rate: r.Rate, Period: r.Period.String(), Burst: r.Burst}
		}
		if q := pl.Quota; q != nil {
			p.Quota = &registry.Quota{Limit: q.Limit, Window: registry.QuotaWindow(q.Window)}
		}
		objs = append(objs, p)
	}
	for _, a := range f.APIs {
		objs = append(objs, registry.API{Tenant: DefaultTenant, Name: a.Name})
	}
	for _, a := range f.Applications {
		app := registry.Application{Tenant: DefaultTenant, Name: a.ID, APIKeyHashes: a.APIKeys}
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
		objs = append(objs, registry.Subscription{Tenant: DefaultTenant, Name: s.Application + "." + s.API, Application: s.Application, API: s.API, Plan: s.Plan, State: state})
	}
	return objs
}

// withStore applies the file's resources into the store and returns the
// configuration extended with the APIs (their spec is an API block of the
// configuration, as JSON), applications, plans and subscriptions created
// through the admin API in the default tenant. The file stays authoritative
// for what it declares. A registry resource that does not fit (an invalid
// API spec, a reference to something undefined) makes the whole load fail,
// like a bad file: the running configuration keeps serving and the reason
// is logged.
func withStore(ctx context.Context, st registry.Store, f config.File) (config.File, error) {
	if _, err := st.ApplyFile(ctx, fileObjects(f)); err != nil {
		return f, fmt.Errorf("applying the configuration's resources to the registry: %w", err)
	}
	_, all, err := st.ReadAll(ctx)
	if err != nil {
		return f, fmt.Errorf("reading the registry: %w", err)
	}
	f.APIs = append([]config.API(nil), f.APIs...)
	f.Applications = append([]config.Application(nil), f.Applications...)
	f.Plans = append([]config.Plan(nil), f.Plans...)
	f.Subscriptions = append([]config.Subscription(nil), f.Subscriptions...)
	for _, r := range all {
		if r.ManagedBy != registry.ManagedByAPI {
			continue
		}
		switch o := r.Object.(type) {
		case registry.API:
			if o.Tenant != DefaultTenant || len(o.Spec) == 0 {
				continue
			}
			api, probs := config.ParseAPI("registry api "+o.Name, o.Spec)
			if len(probs) > 0 {
				return f, fmt.Errorf("registry API %q has an invalid spec: %v", o.Name, probs)
			}
			api.Name = o.Name
			f.APIs = append(f.APIs, api)
		case registry.Application:
			if o.Tenant != DefaultTenant {
				continue
			}
			app := config.Application{ID: o.Name, APIKeys: o.APIKeyHashes}
			for _, c := range o.Certificates {
				app.Certificates = append(app.Certificates, config.AppCertificate{Fingerprint: c.Fingerprint, Issuer: c.Issuer, SubjectDN: c.SubjectDN, CN: c.CN, DNS: c.DNS, URI: c.URI})
			}
			if c := o.OAuth2; c != nil {
				app.OAuth2 = &config.OAuth2Client{ClientID: c.ClientID, AuthMethods: c.AuthMethods, SecretHashes: c.SecretHashes}
			}
			f.Applications = append(f.Applications, app)
		case registry.Plan:
			if o.Tenant != DefaultTenant {
				continue
			}
			pl := config.Plan{Name: o.Name, Scopes: o.Scopes}
			if r := o.RateLimit; r != nil {
				d, err := time.ParseDuration(r.Period)
				if err != nil {
					return f, fmt.Errorf("registry plan %q: rate_limit.period %q: %w", o.Name, r.Period, err)
				}
				pl.RateLimit = &config.RateLimit{Rate: r.Rate, Period: d, Burst: r.Burst}
			}
			if q := o.Quota; q != nil {
				pl.Quota = &config.Quota{Limit: q.Limit, Window: string(q.Window)}
			}
			f.Plans = append(f.Plans, pl)
		case registry.Subscription:
			if o.Tenant != DefaultTenant {
				continue
			}
			f.Subscriptions = append(f.Subscriptions, config.Subscription{Application: o.Application, API: o.API, Plan: o.Plan, State: string(o.State)})
		}
	}
	return f, nil
}

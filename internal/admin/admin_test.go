package admin

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/registry"
	"github.com/portcullis/portcullis/internal/testpki"
)

func TestNewRejectsBadOptions(t *testing.T) {
	store := newFixture(t).store
	ok := Principal{Name: "x", Role: RoleAdmin}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"a missing store is refused", Options{}, "store is required"},
		{"a token hash must be sha256 hex", Options{Store: store, Tokens: []Token{{Hash: "md5:00", Principal: ok}}}, "token 0: hash"},
		{"a token needs a principal name", Options{Store: store, Tokens: []Token{{Hash: tokenHash("t"), Principal: Principal{Role: RoleAdmin}}}}, "name is required"},
		{"an unknown role lists the valid ones", Options{Store: store, Tokens: []Token{{Hash: tokenHash("t"), Principal: Principal{Name: "x", Role: "root"}}}}, `unknown role "root" (valid: admin, tenant-admin)`},
		{"a tenant-admin needs a tenant", Options{Store: store, Tokens: []Token{{Hash: tokenHash("t"), Principal: Principal{Name: "x", Role: RoleTenantAdmin}}}}, "needs a tenant"},
		{"an admin has no tenant", Options{Store: store, Tokens: []Token{{Hash: tokenHash("t"), Principal: Principal{Name: "x", Role: RoleAdmin, Tenant: "acme"}}}}, "administers every tenant"},
		{"a certificate rule needs a verifier", Options{Store: store, ClientCerts: []ClientCertRule{{CN: "a", Principal: ok}}}, "verifier is required"},
		{"a certificate rule must name a certificate (fails closed)", Options{Store: store, ClientCerts: []ClientCertRule{{Verifier: rejectAll{}, Principal: ok}}}, "set cn, fingerprint or both"},
		{"a fingerprint must be SHA-256 hex", Options{Store: store, ClientCerts: []ClientCertRule{{Verifier: rejectAll{}, Fingerprint: "abc", Principal: ok}}}, "64 hex digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want ErrInvalidOptions containing %q", err, tt.want)
			}
		})
	}
}

// rejectAll is a Verifier that trusts nothing.
type rejectAll struct{}

func (rejectAll) Verify([]*x509.Certificate, x509.ExtKeyUsage, time.Time) ([]*x509.Certificate, error) {
	return nil, errors.New("untrusted")
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	otherCA := testpki.NewCA(t, "Some Other CA")
	tests := []struct {
		name   string
		cert   *testpki.Leaf
		header string
		// who is the principal whoami names, "" for a 401.
		who, via string
	}{
		{name: "no credentials get 401"},
		{name: "an admin certificate matched by CN authenticates", cert: f.alice, who: "alice", via: viaClientCertificate},
		{name: "an admin certificate matched by fingerprint is named by its subject", cert: f.carol, who: "CN=carol,O=Portcullis tests", via: viaClientCertificate},
		{name: "a certificate from another CA with an admin's CN gets 401", cert: otherCA.Issue(t, "alice", testpki.Client())},
		{name: "a trusted certificate that no rule names gets 401", cert: f.adminCA.Issue(t, "mallory", testpki.Client())},
		{name: "a trusted server-only certificate gets 401 (wrong usage)", cert: f.adminCA.Issue(t, "alice", testpki.Server())},
		{name: "an expired admin certificate gets 401", cert: f.adminCA.Issue(t, "alice", testpki.Client(), testpki.Expired())},
		{name: "an admin bearer token authenticates", header: "Bearer " + adminToken, who: "ci-bot", via: viaBearerToken},
		{name: "the Bearer scheme is case-insensitive", header: "bearer " + adminToken, who: "ci-bot", via: viaBearerToken},
		{name: "a wrong bearer token gets 401", header: "Bearer " + adminToken + "x"},
		{name: "basic authentication gets 401", header: "Basic YWRtaW46YWRtaW4="},
		{name: "a wrong token is not rescued by a good certificate", cert: f.alice, header: "Bearer nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.client(tt.cert, "")
			var hdr []string
			if tt.header != "" {
				hdr = []string{"Authorization", tt.header}
			}
			r := c.do(http.MethodGet, "/admin/v1/whoami", nil, hdr...)
			if tt.who == "" {
				r.problem(t, problem.CodeAdminUnauthenticated, "whoami")
				if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="portcullis-admin"`) {
					t.Errorf("WWW-Authenticate %q", got)
				}
				return
			}
			w := decodeJSON[whoamiBody](t, r.want(t, http.StatusOK, "whoami"))
			if w.Name != tt.who || w.AuthenticatedBy != tt.via {
				t.Errorf("whoami = %+v, want %q by %s", w, tt.who, tt.via)
			}
		})
	}
	// Every route authenticates, including unknown paths and the document.
	for _, path := range []string{"/admin/v1/openapi.json", "/admin/v1/apis", "/admin/v1/nope", "/"} {
		f.client(nil, "").do(http.MethodGet, path, nil).problem(t, problem.CodeAdminUnauthenticated, path)
	}
	if logs := f.logs.String(); strings.Contains(logs, adminToken) {
		t.Errorf("the log contains the admin token:\n%s", logs)
	}
}

func TestTenantIsolation(t *testing.T) {
	f := newFixture(t)
	admin := f.admin()
	for _, tenant := range []string{"acme", "globex"} {
		admin.do(http.MethodPut, "/admin/v1/tenants/"+tenant, map[string]any{}).want(t, http.StatusCreated, "create tenant "+tenant)
	}
	admin.do(http.MethodPut, "/admin/v1/apis/globex/billing", map[string]any{}).want(t, http.StatusCreated, "create globex API")

	for name, c := range map[string]*client{"bob (certificate)": f.client(f.bob, ""), "acme-ops (token)": f.client(nil, acmeToken)} {
		t.Run(name, func(t *testing.T) {
			// Full CRUD in the own tenant.
			r := c.do(http.MethodPut, "/admin/v1/apis/acme/orders", map[string]any{"spec": map[string]any{"path": "/orders"}}).want(t, http.StatusCreated, "create")
			r = c.do(http.MethodGet, "/admin/v1/apis/acme/orders", nil).want(t, http.StatusOK, "read")
			r = c.do(http.MethodPut, "/admin/v1/apis/acme/orders", map[string]any{"spec": map[string]any{"path": "/v2/orders"}}, "If-Match", r.header.Get("ETag")).want(t, http.StatusOK, "replace")
			list := decodeJSON[page[resource]](t, c.do(http.MethodGet, "/admin/v1/apis?tenant=acme", nil).want(t, http.StatusOK, "list own tenant"))
			if len(list.Items) != 1 || list.Items[0].Name != "orders" {
				t.Errorf("own listing = %+v", list.Items)
			}
			c.do(http.MethodGet, "/admin/v1/audit?tenant=acme", nil).want(t, http.StatusOK, "own audit")
			c.do(http.MethodDelete, "/admin/v1/apis/acme/orders", nil, "If-Match", r.header.Get("ETag")).want(t, http.StatusNoContent, "delete")

			// Everything outside it is forbidden, whether it exists or not.
			forbidden := []struct{ method, path string }{
				{http.MethodGet, "/admin/v1/apis/globex/billing"},
				{http.MethodGet, "/admin/v1/apis/globex/missing"},
				{http.MethodPut, "/admin/v1/apis/globex/orders"},
				{http.MethodDelete, "/admin/v1/apis/globex/billing"},
				{http.MethodGet, "/admin/v1/apis?tenant=globex"},
				{http.MethodGet, "/admin/v1/apis?tenant=*"},
				{http.MethodGet, "/admin/v1/tenants"},
				{http.MethodGet, "/admin/v1/tenants/acme"},
				{http.MethodPut, "/admin/v1/tenants/initech"},
				{http.MethodDelete, "/admin/v1/tenants/acme"},
				{http.MethodGet, "/admin/v1/audit?tenant=globex"},
				{http.MethodGet, "/admin/v1/audit?tenant=*"},
			}
			for _, fb := range forbidden {
				c.do(fb.method, fb.path, map[string]any{}).problem(t, problem.CodeAdminForbidden, fb.method+" "+fb.path)
			}
			d := c.do(http.MethodGet, "/admin/v1/apis", nil).problem(t, problem.CodeAdminInvalid, "list without tenant")
			if !strings.Contains(d.Detail, "?tenant=acme") {
				t.Errorf("detail %q does not say how to name the tenant", d.Detail)
			}
		})
	}
	if _, err := f.store.Get(t.Context(), registry.KindAPI, "globex", "billing"); err != nil {
		t.Errorf("the other tenant's API was touched: %v", err)
	}
	// An admin lists across tenants with or without "*".
	for _, path := range []string{"/admin/v1/apis", "/admin/v1/apis?tenant=*"} {
		list := decodeJSON[page[resource]](t, admin.do(http.MethodGet, path, nil).want(t, http.StatusOK, path))
		if len(list.Items) != 1 || list.Items[0].Tenant != "globex" {
			t.Errorf("%s = %+v", path, list.Items)
		}
	}
}

// kindCase is one resource the CRUD test creates, replaces and deletes.
type kindCase struct {
	kind           string
	path           string
	create, update map[string]any
}

func TestCRUDEveryKind(t *testing.T) {
	f := newFixture(t)
	admin := f.admin()
	rootPEM := string(testpki.NewCA(t, "Partners Root").CertPEM())
	sparePEM := string(testpki.NewCA(t, "Partners Spare").CertPEM())
	cases := []kindCase{
		{"tenant", "/admin/v1/tenants/acme", map[string]any{"display_name": "Acme"}, map[string]any{"display_name": "Acme Corp"}},
		{"certificate", "/admin/v1/certificates/acme/root", map[string]any{"pem": rootPEM}, map[string]any{"pem": rootPEM + sparePEM}},
		{"certificate", "/admin/v1/certificates/acme/spare", map[string]any{"pem": sparePEM}, map[string]any{"pem": rootPEM}},
		{"trust_set", "/admin/v1/trust_sets/acme/partners", map[string]any{"certificates": []string{"root"}}, map[string]any{"certificates": []string{"root", "spare"}}},
		{"api", "/admin/v1/apis/acme/orders", map[string]any{"spec": map[string]any{"path": "/orders"}}, map[string]any{"spec": map[string]any{"path": "/v2/orders"}}},
		{"plan", "/admin/v1/plans/acme/gold",
			map[string]any{"rate_limit": map[string]any{"rate": 10, "period": "1s"}},
			map[string]any{"rate_limit": map[string]any{"rate": 20, "period": "1s"}, "quota": map[string]any{"limit": 1000, "window": "day"}}},
		{"application", "/admin/v1/applications/acme/shop",
			map[string]any{"api_key_hashes": []string{tokenHash("k1")}},
			map[string]any{"api_key_hashes": []string{tokenHash("k2")}, "certificates": []map[string]string{{"issuer": "CN=Partners Root", "cn": "shop"}}}},
		{"subscription", "/admin/v1/subscriptions/acme/shop-orders",
			map[string]any{"application": "shop", "api": "orders", "plan": "gold", "state": "active"},
			map[string]any{"application": "shop", "api": "orders", "plan": "gold", "state": "suspended"}},
	}
	etags := map[string]string{}
	var writes int64
	for _, kc := range cases {
		r := admin.do(http.MethodPut, kc.path, kc.create).want(t, http.StatusCreated, "create "+kc.path)
		writes++
		res := r.resource(t)
		if res.Kind != kc.kind || res.ManagedBy != "api" || r.header.Get("Location") != kc.path || r.header.Get("ETag") != fmt.Sprintf("%q", fmt.Sprint(res.Version)) {
			t.Errorf("create %s: %+v, Location %q, ETag %q", kc.path, res, r.header.Get("Location"), r.header.Get("ETag"))
		}
		got := admin.do(http.MethodGet, kc.path, nil).want(t, http.StatusOK, "read "+kc.path)
		if got.header.Get("ETag") != r.header.Get("ETag") {
			t.Errorf("read %s: ETag %q, created as %q", kc.path, got.header.Get("ETag"), r.header.Get("ETag"))
		}
		admin.do(http.MethodGet, kc.path, nil, "If-None-Match", r.header.Get("ETag")).want(t, http.StatusNotModified, "conditional read "+kc.path)

		collection, _, _ := strings.Cut(strings.TrimPrefix(kc.path, "/admin/v1/"), "/")
		list := decodeJSON[page[resource]](t, admin.do(http.MethodGet, "/admin/v1/"+collection, nil).want(t, http.StatusOK, "list "+collection))
		found := false
		for _, it := range list.Items {
			found = found || it.Name == res.Name
		}
		if !found {
			t.Errorf("list %s does not contain %q: %+v", collection, res.Name, list.Items)
		}

		admin.do(http.MethodPut, kc.path, kc.update).problem(t, problem.CodeAdminPreconditionRequired, "replace without If-Match "+kc.path)
		up := admin.do(http.MethodPut, kc.path, kc.update, "If-Match", r.header.Get("ETag")).want(t, http.StatusOK, "replace "+kc.path)
		writes++
		if v := up.resource(t).Version; v <= res.Version {
			t.Errorf("replace %s: version %d after %d", kc.path, v, res.Version)
		}
		etags[kc.path] = up.header.Get("ETag")
	}
	if got := f.changes.Load(); got != writes {
		t.Errorf("OnChange called %d times after %d writes", got, writes)
	}

	// References are checked, and the field at fault is named.
	refErrors := []struct {
		name, path string
		body       map[string]any
		field      string
	}{
		{"a subscription to an unknown plan", "/admin/v1/subscriptions/acme/s2", map[string]any{"application": "shop", "api": "orders", "plan": "silver", "state": "active"}, "plan: unknown plan"},
		{"a subscription of an unknown application", "/admin/v1/subscriptions/acme/s3", map[string]any{"application": "ghost", "api": "orders", "plan": "gold", "state": "active"}, "application: unknown application"},
		{"a trust set naming an unknown certificate", "/admin/v1/trust_sets/acme/bad", map[string]any{"certificates": []string{"root", "nope"}}, "certificates[1]: unknown certificate"},
		{"a resource in an unknown tenant", "/admin/v1/apis/initech/orders", map[string]any{}, `tenant: unknown tenant "initech"`},
		{"a second subscription of the application to the API", "/admin/v1/subscriptions/acme/dup", map[string]any{"application": "shop", "api": "orders", "plan": "gold", "state": "active"}, "api: application \"shop\" already subscribes"},
		{"an invalid plan", "/admin/v1/plans/acme/bad", map[string]any{"rate_limit": map[string]any{"rate": 0, "period": "soon"}}, "rate_limit.rate: must be at least 1"},
		{"an unknown field", "/admin/v1/plans/acme/bad", map[string]any{"colour": "gold"}, `unknown field "colour"`},
		{"a body naming another resource", "/admin/v1/plans/acme/bad", map[string]any{"name": "other"}, `name: the body names "other" but the URL names "bad"`},
		{"a body naming another tenant", "/admin/v1/plans/acme/bad", map[string]any{"tenant": "globex"}, `tenant: the body names tenant "globex"`},
		{"a private key uploaded as a certificate", "/admin/v1/certificates/acme/key", map[string]any{"pem": string(testpki.KeyPEM(f.alice.Key))}, "pem: block 1 is a PRIVATE KEY"},
	}
	for _, re := range refErrors {
		d := admin.do(http.MethodPut, re.path, re.body).problem(t, problem.CodeAdminInvalid, re.name)
		if !strings.Contains(d.Detail, re.field) {
			t.Errorf("%s: detail %q does not contain %q", re.name, d.Detail, re.field)
		}
	}
	d := admin.do(http.MethodDelete, "/admin/v1/plans/acme/gold", nil, "If-Match", etags["/admin/v1/plans/acme/gold"]).problem(t, problem.CodeAdminInvalid, "delete a plan still subscribed to")
	if !strings.Contains(d.Detail, `subscription "shop-orders"`) {
		t.Errorf("delete of a referenced plan: detail %q does not name the referrer", d.Detail)
	}
	admin.do(http.MethodPut, "/admin/v1/apis/acme/big", strings.Repeat(" ", maxBodyBytes+1)).problem(t, problem.CodeRequestTooLarge, "a body over 1 MiB")
	if got := f.changes.Load(); got != writes {
		t.Errorf("OnChange called %d times after %d writes and only failures since", got, writes)
	}

	// Delete everything, referrers first.
	for i := len(cases) - 1; i >= 0; i-- {
		kc := cases[i]
		admin.do(http.MethodDelete, kc.path, nil).problem(t, problem.CodeAdminPreconditionRequired, "delete without If-Match "+kc.path)
		admin.do(http.MethodDelete, kc.path, nil, "If-Match", etags[kc.path]).want(t, http.StatusNoContent, "delete "+kc.path)
		writes++
		admin.do(http.MethodGet, kc.path, nil).problem(t, problem.CodeAdminNotFound, "read deleted "+kc.path)
		admin.do(http.MethodDelete, kc.path, nil).problem(t, problem.CodeAdminNotFound, "delete deleted "+kc.path)
	}
	if got := f.changes.Load(); got != writes {
		t.Errorf("OnChange called %d times after %d writes", got, writes)
	}
}

func TestConditionalWrites(t *testing.T) {
	f := newFixture(t)
	admin := f.admin()
	admin.do(http.MethodPut, "/admin/v1/tenants/acme", map[string]any{}, "If-None-Match", "*").want(t, http.StatusCreated, "create only")
	const path = "/admin/v1/apis/acme/orders"
	v1 := admin.do(http.MethodPut, path, map[string]any{}).want(t, http.StatusCreated, "create").header.Get("ETag")
	v2 := admin.do(http.MethodPut, path, map[string]any{"spec": map[string]any{"a": 1}}, "If-Match", v1).want(t, http.StatusOK, "replace").header.Get("ETag")

	admin.do(http.MethodPut, path, map[string]any{"spec": map[string]any{"a": 2}}, "If-Match", v1).problem(t, problem.CodeAdminPreconditionFailed, "replace with a stale ETag")
	admin.do(http.MethodDelete, path, nil, "If-Match", v1).problem(t, problem.CodeAdminPreconditionFailed, "delete with a stale ETag")
	admin.do(http.MethodPut, path, map[string]any{"spec": map[string]any{"a": 2}}, "If-Match", "W/"+v2).problem(t, problem.CodeAdminPreconditionFailed, "If-Match compares strongly")
	admin.do(http.MethodPut, path, map[string]any{"spec": map[string]any{"a": 2}}, "If-Match", `"0"`).problem(t, problem.CodeAdminPreconditionFailed, "version 0 is no version")
	admin.do(http.MethodPut, path, map[string]any{}, "If-None-Match", "*").problem(t, problem.CodeAdminConflict, "create only over an existing resource")
	admin.do(http.MethodPut, path, map[string]any{}, "If-Match", "42").problem(t, problem.CodeAdminInvalid, "an unquoted ETag")
	admin.do(http.MethodPut, path, map[string]any{}, "If-Match", v2, "If-None-Match", "*").problem(t, problem.CodeAdminInvalid, "both preconditions")
	admin.do(http.MethodPut, path, "", "If-Match", v2).problem(t, problem.CodeAdminInvalid, "an empty body")
	admin.do(http.MethodPut, path, "{", "If-Match", v2).problem(t, problem.CodeAdminInvalid, "malformed JSON")

	v3 := admin.do(http.MethodPut, path, map[string]any{"spec": map[string]any{"a": 3}}, "If-Match", `"1", `+v2).want(t, http.StatusOK, "If-Match listing the current ETag").header.Get("ETag")
	v4 := admin.do(http.MethodPut, path, map[string]any{"spec": map[string]any{"a": 4}}, "If-Match", "*").want(t, http.StatusOK, "If-Match: *").header.Get("ETag")
	if v3 == v2 || v4 == v3 {
		t.Errorf("ETags did not move: %s %s %s", v2, v3, v4)
	}
	same := admin.do(http.MethodPut, path, map[string]any{"spec": map[string]any{"a": 4}}, "If-Match", v4).want(t, http.StatusOK, "an identical replace")
	if same.header.Get("ETag") != v4 {
		t.Errorf("an identical replace moved the ETag from %s to %s", v4, same.header.Get("ETag"))
	}
	admin.do(http.MethodDelete, path, nil, "If-Match", v4).want(t, http.StatusNoContent, "delete")
	admin.do(http.MethodPut, path, map[string]any{}, "If-Match", v4).problem(t, problem.CodeAdminPreconditionFailed, "replace a deleted resource")
	admin.do(http.MethodPut, path, map[string]any{}, "If-Match", "*").problem(t, problem.CodeAdminPreconditionFailed, "If-Match: * on a missing resource")
	admin.do(http.MethodDelete, path, nil, "If-Match", v4).problem(t, problem.CodeAdminPreconditionFailed, "delete a deleted resource")
}

func TestFileManagedResourcesAreReadOnly(t *testing.T) {
	f := newFixture(t)
	ctx := registry.WithActor(context.Background(), "file")
	if _, err := f.store.ApplyFile(ctx, []registry.Object{
		registry.Tenant{Name: "acme"},
		registry.API{Tenant: "acme", Name: "legacy"},
	}); err != nil {
		t.Fatal(err)
	}
	admin := f.admin()
	const path = "/admin/v1/apis/acme/legacy"
	r := admin.do(http.MethodGet, path, nil).want(t, http.StatusOK, "read")
	if res := r.resource(t); res.ManagedBy != "file" {
		t.Fatalf("managed_by %q", res.ManagedBy)
	}
	etag := r.header.Get("ETag")
	attempts := []struct {
		name, method string
		headers      []string
	}{
		{"replace with If-Match", http.MethodPut, []string{"If-Match", etag}},
		{"replace without If-Match", http.MethodPut, nil},
		{"delete with If-Match", http.MethodDelete, []string{"If-Match", etag}},
		{"delete without If-Match", http.MethodDelete, nil},
	}
	for _, a := range attempts {
		d := admin.do(a.method, path, map[string]any{"spec": map[string]any{"x": 1}}, a.headers...).problem(t, problem.CodeAdminConflict, a.name)
		if d.Detail != fileManagedDetail {
			t.Errorf("%s: detail %q", a.name, d.Detail)
		}
	}
	if n := f.changes.Load(); n != 0 {
		t.Errorf("OnChange called %d times for refused writes", n)
	}
}

func TestPagination(t *testing.T) {
	f := newFixture(t)
	objs := []registry.Object{registry.Tenant{Name: "acme"}}
	for i := range 250 {
		objs = append(objs, registry.Application{Tenant: "acme", Name: fmt.Sprintf("app-%03d", i)})
	}
	if _, err := f.store.ApplyFile(t.Context(), objs); err != nil {
		t.Fatal(err)
	}
	admin := f.admin()
	var names []string
	var sizes []int
	path := "/admin/v1/applications?tenant=acme&limit=100"
	for range 10 {
		p := decodeJSON[page[resource]](t, admin.do(http.MethodGet, path, nil).want(t, http.StatusOK, path))
		sizes = append(sizes, len(p.Items))
		for _, it := range p.Items {
			names = append(names, it.Name)
		}
		if p.NextPageToken == "" {
			break
		}
		path = "/admin/v1/applications?tenant=acme&limit=100&page_token=" + p.NextPageToken
	}
	if fmt.Sprint(sizes) != "[100 100 50]" {
		t.Errorf("page sizes %v, want [100 100 50]", sizes)
	}
	for i, n := range names {
		if want := fmt.Sprintf("app-%03d", i); n != want {
			t.Fatalf("item %d is %q, want %q", i, n, want)
		}
	}
	bad := []struct{ name, path, detail string }{
		{"limit 0", "/admin/v1/applications?tenant=acme&limit=0", "limit: must be a whole number from 1 to 1000"},
		{"limit not a number", "/admin/v1/applications?tenant=acme&limit=ten", "limit:"},
		{"limit over the maximum", "/admin/v1/applications?tenant=acme&limit=1001", "limit:"},
		{"a forged page token", "/admin/v1/applications?tenant=acme&page_token=xyz", "page token"},
		{"a page token of another listing", "/admin/v1/plans?tenant=acme&page_token=" + strings.TrimPrefix(path, "/admin/v1/applications?tenant=acme&limit=100&page_token="), "another listing"},
		{"an unknown parameter", "/admin/v1/applications?tenant=acme&sort=name", `unknown query parameter "sort" (valid: tenant, limit, page_token)`},
		{"a repeated parameter", "/admin/v1/applications?tenant=acme&tenant=globex", `"tenant" is repeated`},
		{"a tenant for tenants", "/admin/v1/tenants?tenant=acme", `unknown query parameter "tenant"`},
	}
	for _, b := range bad {
		d := admin.do(http.MethodGet, b.path, nil).problem(t, problem.CodeAdminInvalid, b.name)
		if !strings.Contains(d.Detail, b.detail) {
			t.Errorf("%s: detail %q does not contain %q", b.name, d.Detail, b.detail)
		}
	}
}

func TestAuditNamesTheActor(t *testing.T) {
	f := newFixture(t)
	f.admin().do(http.MethodPut, "/admin/v1/tenants/acme", map[string]any{}).want(t, http.StatusCreated, "ci-bot creates a tenant")
	f.client(f.alice, "").do(http.MethodPut, "/admin/v1/plans/acme/gold", map[string]any{}).want(t, http.StatusCreated, "alice creates a plan")
	bob := f.client(f.bob, "")
	r := bob.do(http.MethodPut, "/admin/v1/apis/acme/orders", map[string]any{}).want(t, http.StatusCreated, "bob creates an API")
	bob.do(http.MethodDelete, "/admin/v1/apis/acme/orders", nil, "If-Match", r.header.Get("ETag")).want(t, http.StatusNoContent, "bob deletes it")

	entries := decodeJSON[page[registry.AuditEntry]](t, bob.do(http.MethodGet, "/admin/v1/audit?tenant=acme", nil).want(t, http.StatusOK, "audit")).Items
	var got []string
	for _, e := range entries {
		got = append(got, e.Who+" "+e.Action+" "+string(e.Kind)+" "+e.Name)
	}
	want := []string{"bob delete api orders", "bob create api orders", "alice create plan gold"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("acme's audit entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	all := decodeJSON[page[registry.AuditEntry]](t, f.admin().do(http.MethodGet, "/admin/v1/audit?limit=10", nil).want(t, http.StatusOK, "all audit")).Items
	if len(all) != 4 || all[3].Who != "ci-bot" || all[3].Kind != registry.KindTenant {
		t.Errorf("every audit entry: %+v", all)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "admin change") || !strings.Contains(logs, "principal=bob action=delete kind=api tenant=acme name=orders") {
		t.Errorf("the log does not record bob's delete:\n%s", logs)
	}
}

func TestRoutingErrors(t *testing.T) {
	f := newFixture(t)
	admin := f.admin()
	r := admin.do(http.MethodPost, "/admin/v1/apis/acme/orders", map[string]any{})
	r.problem(t, problem.CodeMethodNotAllowed, "POST to a resource")
	if allow := r.header.Get("Allow"); allow != "GET, PUT, DELETE, HEAD" {
		t.Errorf("Allow %q", allow)
	}
	admin.do(http.MethodDelete, "/admin/v1/apis", nil).problem(t, problem.CodeMethodNotAllowed, "DELETE a collection")
	for _, path := range []string{"/admin/v1/widgets", "/admin/v1/apis/acme", "/admin/v1/tenants/acme/extra", "/admin/v2/apis", "/"} {
		admin.do(http.MethodGet, path, nil).problem(t, problem.CodeAdminNotFound, path)
	}
	admin.do(http.MethodGet, "/admin/v1/whoami?x=1", nil).problem(t, problem.CodeAdminInvalid, "a query on whoami")
}

// downStore is a registry whose database has gone away.
type downStore struct{ registry.Store }

func (downStore) List(context.Context, registry.Kind, string, registry.Page) ([]registry.Resource, string, error) {
	return nil, "", fmt.Errorf("listing: registry database %q is locked: %w", "/var/lib/portcullis/registry.db", registry.ErrStoreUnavailable)
}

func TestStoreUnavailable(t *testing.T) {
	f := newFixtureWith(t, downStore{})
	d := f.admin().do(http.MethodGet, "/admin/v1/tenants", nil).problem(t, problem.CodeAdminStoreUnavailable, "list with the database down")
	if strings.Contains(d.Detail, "/var/lib") {
		t.Errorf("the detail leaks the database path: %q", d.Detail)
	}
	if !strings.Contains(f.logs.String(), "/var/lib/portcullis/registry.db") {
		t.Errorf("the log does not name the cause:\n%s", f.logs.String())
	}
}

// TestReload: POST /admin/v1/reload is the admin role's; it reports the
// APIs now served, or the problems of a rejected configuration.
func TestReload(t *testing.T) {
	f := newFixture(t)
	f.client(nil, "").do("POST", "/admin/v1/reload", nil).problem(t, problem.CodeAdminUnauthenticated, "reload without credentials")
	f.client(nil, acmeToken).do("POST", "/admin/v1/reload", nil).problem(t, problem.CodeAdminForbidden, "reload by a tenant-admin")
	if n := f.reloads.Load(); n != 0 {
		t.Fatalf("refused callers reloaded %d times", n)
	}
	got := decodeJSON[reloadBody](t, f.admin().do("POST", "/admin/v1/reload", nil).want(t, 200, "reload"))
	if got.Result != "reloaded" || got.APIs != 3 {
		t.Errorf("reload answered %+v", got)
	}
	d := f.admin().do("POST", "/admin/v1/reload", nil).problem(t, problem.CodeAdminInvalid, "rejected reload")
	if !strings.Contains(d.Detail, `plan "platinum" is not defined`) {
		t.Errorf("detail %q does not name the problem", d.Detail)
	}
	f.admin().do("GET", "/admin/v1/reload", nil).problem(t, problem.CodeMethodNotAllowed, "GET reload")
}

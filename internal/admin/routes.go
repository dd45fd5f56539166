package admin

import (
	"net/http"
	"slices"
	"strings"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/registry"
)

// prefix is where every route lives.
const prefix = "/admin/v1"

// kindInfo ties a registry kind to its URL segment and schema name.
type kindInfo struct {
	kind registry.Kind
	// segment is the collection in URLs, e.g. "apis".
	segment string
	// schema names the kind's spec schema in the OpenAPI document; the
	// resource envelope is schema+"Resource" and a page schema+"List".
	schema string
	// noun is how summaries name one resource.
	noun string
}

// tenantScoped reports whether resources of the kind live in a tenant.
func (k kindInfo) tenantScoped() bool { return k.kind != registry.KindTenant }

// itemPath is the path template of one resource.
func (k kindInfo) itemPath() string {
	if k.tenantScoped() {
		return prefix + "/" + k.segment + "/{tenant}/{name}"
	}
	return prefix + "/" + k.segment + "/{name}"
}

// kinds lists every kind the API serves, in the registry's order.
func kinds() []kindInfo {
	return []kindInfo{
		{registry.KindTenant, "tenants", "Tenant", "tenant"},
		{registry.KindCertificate, "certificates", "Certificate", "certificate"},
		{registry.KindTrustSet, "trust_sets", "TrustSet", "trust set"},
		{registry.KindAPI, "apis", "API", "API"},
		{registry.KindPlan, "plans", "Plan", "plan"},
		{registry.KindApplication, "applications", "Application", "application"},
		{registry.KindSubscription, "subscriptions", "Subscription", "subscription"},
	}
}

// route is one operation: how the mux finds it, what it does, and what
// the OpenAPI document says about it. The table of routes is the single
// source of both.
type route struct {
	method string
	// path is both the ServeMux pattern's path and the OpenAPI path
	// template: their {name} syntax is the same.
	path    string
	id      string
	summary string
	tag     string
	// params name entries of the document's components.parameters.
	params []string
	// body names the schema of the request body, "" for none.
	body string
	// ok maps each success status to the schema of its body ("" for no
	// body).
	ok map[int]string
	// etag says whether successful responses carry an ETag.
	etag bool
	// fails are the problem codes the route may answer with, besides those
	// every route may (see commonFailures).
	fails []string
	// handle serves the route.
	handle http.HandlerFunc
}

// commonFailures may answer any route: authentication, the store, and
// surprises.
func commonFailures() []string {
	return []string{problem.CodeAdminUnauthenticated, problem.CodeAdminStoreUnavailable, problem.CodeInternal}
}

// routeTable is every route the Server serves.
func (s *Server) routeTable() []route {
	rs := []route{
		{
			method: http.MethodGet, path: prefix + "/whoami", id: "whoami", tag: "meta",
			summary: "Describe the authenticated principal",
			ok:      map[int]string{http.StatusOK: "Whoami"},
			handle:  s.whoami,
		},
		{
			method: http.MethodGet, path: prefix + "/openapi.json", id: "getOpenAPI", tag: "meta",
			summary: "This OpenAPI 3.1 document",
			ok:      map[int]string{http.StatusOK: "OpenAPIDocument"},
			handle:  s.serveOpenAPI,
		},
		{
			method: http.MethodGet, path: prefix + "/audit", id: "listAudit", tag: "audit",
			summary: "List audit entries, newest first",
			params:  []string{"tenantQuery", "limit", "pageToken"},
			ok:      map[int]string{http.StatusOK: "AuditList"},
			fails:   []string{problem.CodeAdminForbidden, problem.CodeAdminInvalid},
			handle:  s.listAudit,
		},
	}
	if s.reload != nil {
		rs = append(rs, route{
			method: http.MethodPost, path: prefix + "/reload", id: "reload", tag: "meta",
			summary: "Reload the configuration file and the registry now, as SIGHUP does",
			ok:      map[int]string{http.StatusOK: "ReloadResult"},
			fails:   []string{problem.CodeAdminForbidden, problem.CodeAdminInvalid},
			handle:  s.reloadNow,
		})
	}
	for _, k := range kinds() {
		item := []string{"name"}
		if k.tenantScoped() {
			item = []string{"tenant", "name"}
		}
		listParams := []string{"limit", "pageToken"}
		if k.tenantScoped() {
			listParams = append([]string{"tenantQuery"}, listParams...)
		}
		tag := k.segment
		rs = append(rs,
			route{
				method: http.MethodGet, path: prefix + "/" + k.segment, id: "list" + k.schema + "s", tag: tag,
				summary: "List " + k.noun + "s",
				params:  listParams,
				ok:      map[int]string{http.StatusOK: k.schema + "List"},
				fails:   []string{problem.CodeAdminForbidden, problem.CodeAdminInvalid},
				handle:  s.list(k),
			},
			route{
				method: http.MethodGet, path: k.itemPath(), id: "get" + k.schema, tag: tag,
				summary: "Read one " + k.noun,
				params:  append(slices.Clone(item), "ifNoneMatch"),
				ok:      map[int]string{http.StatusOK: k.schema + "Resource", http.StatusNotModified: ""},
				etag:    true,
				fails:   []string{problem.CodeAdminForbidden, problem.CodeAdminNotFound},
				handle:  s.get(k),
			},
			route{
				method: http.MethodPut, path: k.itemPath(), id: "put" + k.schema, tag: tag,
				summary: "Create or replace one " + k.noun,
				params:  append(slices.Clone(item), "ifMatch", "ifNoneMatch"),
				body:    k.schema,
				ok:      map[int]string{http.StatusOK: k.schema + "Resource", http.StatusCreated: k.schema + "Resource"},
				etag:    true,
				fails: []string{
					problem.CodeAdminForbidden, problem.CodeAdminConflict, problem.CodeAdminPreconditionFailed,
					problem.CodeAdminPreconditionRequired, problem.CodeAdminInvalid, problem.CodeRequestTooLarge,
				},
				handle: s.put(k),
			},
			route{
				method: http.MethodDelete, path: k.itemPath(), id: "delete" + k.schema, tag: tag,
				summary: "Delete one " + k.noun,
				params:  append(slices.Clone(item), "ifMatch"),
				ok:      map[int]string{http.StatusNoContent: ""},
				fails: []string{
					problem.CodeAdminForbidden, problem.CodeAdminNotFound, problem.CodeAdminConflict,
					problem.CodeAdminPreconditionFailed, problem.CodeAdminPreconditionRequired, problem.CodeAdminInvalid,
				},
				handle: s.delete(k),
			},
		)
	}
	return rs
}

// buildMux registers every route, a 405 for the other methods of each path,
// and a 404 for every other path, all as problem documents.
func (s *Server) buildMux() *http.ServeMux {
	mux := http.NewServeMux()
	allowed := map[string][]string{}
	var paths []string
	for _, rt := range s.routes {
		mux.HandleFunc(rt.method+" "+rt.path, rt.handle)
		if _, seen := allowed[rt.path]; !seen {
			paths = append(paths, rt.path)
		}
		allowed[rt.path] = append(allowed[rt.path], rt.method)
	}
	for _, p := range paths {
		methods := allowed[p]
		if slices.Contains(methods, http.MethodGet) {
			methods = append(methods, http.MethodHead)
		}
		allow := strings.Join(methods, ", ")
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			pe := problem.New(problem.CodeMethodNotAllowed, "This path allows "+allow+".")
			pe.Header = http.Header{"Allow": {allow}}
			s.fail(w, r, pe)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, problem.New(problem.CodeAdminNotFound,
			"No admin API path matches; GET "+prefix+"/openapi.json lists them."))
	})
	return mux
}

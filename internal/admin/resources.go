package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/registry"
)

// fileManagedDetail tells the admin where a file-managed resource is
// changed.
const fileManagedDetail = "this resource is managed by the configuration file; edit the file"

// listBody is a page of a listing.
type listBody[T any] struct {
	Items []T `json:"items"`
	// NextPageToken is passed as page_token for the next page; it is ""
	// after the last page.
	NextPageToken string `json:"next_page_token"`
}

// whoamiBody describes the caller.
type whoamiBody struct {
	Principal
	AuthenticatedBy string `json:"authenticated_by"`
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	if pe := checkQuery(r.URL.Query()); pe != nil {
		s.fail(w, r, pe)
		return
	}
	ex := exchangeOf(r)
	s.writeJSON(w, r, http.StatusOK, whoamiBody{Principal: ex.principal, AuthenticatedBy: ex.via})
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(s.openapi)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(s.openapi)
}

// checkQuery refuses query parameters other than allowed, and repeated
// ones.
func checkQuery(q url.Values, allowed ...string) *problem.Error {
	for name, values := range q {
		switch {
		case !slices.Contains(allowed, name):
			valid := "none"
			if len(allowed) > 0 {
				valid = strings.Join(allowed, ", ")
			}
			return problem.New(problem.CodeAdminInvalid, fmt.Sprintf("unknown query parameter %q (valid: %s)", name, valid))
		case len(values) > 1:
			return problem.New(problem.CodeAdminInvalid, fmt.Sprintf("query parameter %q is repeated", name))
		}
	}
	return nil
}

// pageOf reads limit and page_token.
func pageOf(q url.Values) (registry.Page, *problem.Error) {
	p := registry.Page{Token: q.Get("page_token")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > registry.MaxPageSize {
			return p, problem.New(problem.CodeAdminInvalid,
				fmt.Sprintf("limit: must be a whole number from 1 to %d (default %d), not %q", registry.MaxPageSize, registry.DefaultPageSize, l))
		}
		p.Size = n
	}
	return p, nil
}

// listScope turns the tenant query parameter into the store's tenant
// argument. An admin may omit it or pass "*" to list every tenant; a
// tenant-admin must name its own tenant.
func listScope(p Principal, tenant string) (string, *problem.Error) {
	switch {
	case p.Role == RoleAdmin && (tenant == "" || tenant == registry.AllTenants):
		return registry.AllTenants, nil
	case tenant == "":
		return "", problem.New(problem.CodeAdminInvalid,
			fmt.Sprintf("tenant: the query parameter is required for a tenant-admin: add ?tenant=%s", url.QueryEscape(p.Tenant)))
	case tenant == registry.AllTenants:
		return "", forbidden(p, "A tenant-admin may not list across tenants.")
	}
	return tenant, allowTenant(p, tenant)
}

func (s *Server) list(k kindInfo) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := exchangeOf(r).principal
		q := r.URL.Query()
		var tenant string
		if k.tenantScoped() {
			if pe := checkQuery(q, "tenant", "limit", "page_token"); pe != nil {
				s.fail(w, r, pe)
				return
			}
			var pe *problem.Error
			if tenant, pe = listScope(p, q.Get("tenant")); pe != nil {
				s.fail(w, r, pe)
				return
			}
		} else {
			if pe := allowTenantless(p); pe != nil {
				s.fail(w, r, pe)
				return
			}
			if pe := checkQuery(q, "limit", "page_token"); pe != nil {
				s.fail(w, r, pe)
				return
			}
		}
		page, pe := pageOf(q)
		if pe != nil {
			s.fail(w, r, pe)
			return
		}
		items, next, err := s.store.List(r.Context(), k.kind, tenant, page)
		if err != nil {
			s.fail(w, r, storeProblem(err))
			return
		}
		if items == nil {
			items = []registry.Resource{}
		}
		s.writeJSON(w, r, http.StatusOK, listBody[registry.Resource]{Items: items, NextPageToken: next})
	}
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	p := exchangeOf(r).principal
	q := r.URL.Query()
	if pe := checkQuery(q, "tenant", "limit", "page_token"); pe != nil {
		s.fail(w, r, pe)
		return
	}
	tenant, pe := listScope(p, q.Get("tenant"))
	if pe != nil {
		s.fail(w, r, pe)
		return
	}
	page, pe := pageOf(q)
	if pe != nil {
		s.fail(w, r, pe)
		return
	}
	entries, next, err := s.store.ListAudit(r.Context(), tenant, page)
	if err != nil {
		s.fail(w, r, storeProblem(err))
		return
	}
	if entries == nil {
		entries = []registry.AuditEntry{}
	}
	s.writeJSON(w, r, http.StatusOK, listBody[registry.AuditEntry]{Items: entries, NextPageToken: next})
}

// itemKey reads the resource's key from the path and checks that the
// principal may touch it.
// itemRequest reads what every single-resource request carries: the key
// from the path, no query parameters, and the conditional headers.
func itemRequest(r *http.Request, k kindInfo) (registry.Key, conditions, *problem.Error) {
	key, pe := itemKey(r, k)
	if pe == nil {
		pe = checkQuery(r.URL.Query())
	}
	var c conditions
	if pe == nil {
		c, pe = parseConditions(r.Header)
	}
	return key, c, pe
}

func itemKey(r *http.Request, k kindInfo) (registry.Key, *problem.Error) {
	p := exchangeOf(r).principal
	key := registry.Key{Kind: k.kind, Name: r.PathValue("name")}
	if !k.tenantScoped() {
		return key, allowTenantless(p)
	}
	key.Tenant = r.PathValue("tenant")
	return key, allowTenant(p, key.Tenant)
}

// itemPath is the URL path of the resource key names.
func itemPath(k kindInfo, key registry.Key) string {
	if k.tenantScoped() {
		return prefix + "/" + k.segment + "/" + url.PathEscape(key.Tenant) + "/" + url.PathEscape(key.Name)
	}
	return prefix + "/" + k.segment + "/" + url.PathEscape(key.Name)
}

func (s *Server) get(k kindInfo) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, c, pe := itemRequest(r, k)
		if pe != nil {
			s.fail(w, r, pe)
			return
		}
		res, err := s.store.Get(r.Context(), key.Kind, key.Tenant, key.Name)
		if err != nil {
			s.fail(w, r, storeProblem(err))
			return
		}
		w.Header().Set("ETag", res.ETag())
		if !noneMatches(c, res.ETag()) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		s.writeJSON(w, r, http.StatusOK, res)
	}
}

func (s *Server) put(k kindInfo) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, c, pe := itemRequest(r, k)
		switch {
		case pe != nil:
		case c.hasMatch() && c.hasNoneMatch():
			pe = problem.New(problem.CodeAdminInvalid, "send If-Match to replace or If-None-Match: * to create, not both")
		case c.hasNoneMatch() && !c.noneMatchAny:
			pe = problem.New(problem.CodeAdminInvalid, "If-None-Match: a PUT accepts only \"*\" (create only)")
		}
		var obj registry.Object
		if pe == nil {
			obj, pe = readObject(r, k, key)
		}
		if pe == nil && s.check != nil {
			if err := s.check(r.Context(), exchangeOf(r).principal, obj); err != nil {
				pe = problem.Wrap(problem.CodeAdminInvalid, err.Error(), err)
			}
		}
		ifVersion := registry.CreateOnly
		if pe == nil && c.hasMatch() {
			ifVersion, pe = s.matchedVersion(r.Context(), key, c)
		}
		if pe != nil {
			s.fail(w, r, pe)
			return
		}
		res, err := s.store.Put(r.Context(), obj, ifVersion, registry.ManagedByAPI)
		switch {
		case err == nil:
		case c.hasMatch() && errors.Is(err, registry.ErrNotFound):
			pe = preconditionFailed(key, err)
		case !c.hasNoneMatch() && errors.Is(err, registry.ErrAlreadyExists):
			pe = s.preconditionRequired(r, key, err)
		default:
			pe = storeProblem(err)
		}
		if pe != nil {
			s.fail(w, r, pe)
			return
		}
		status, action := http.StatusOK, "update"
		if ifVersion == registry.CreateOnly {
			status, action = http.StatusCreated, "create"
			w.Header().Set("Location", itemPath(k, key))
		}
		s.changed(r, action, key, res.Version)
		w.Header().Set("ETag", res.ETag())
		s.writeJSON(w, r, status, res)
	}
}

func (s *Server) delete(k kindInfo) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, c, pe := itemRequest(r, k)
		switch {
		case pe != nil:
		case c.hasNoneMatch():
			pe = problem.New(problem.CodeAdminInvalid, "If-None-Match: a DELETE takes If-Match with the ETag that was read")
		case !c.hasMatch():
			pe = s.preconditionRequired(r, key, nil)
		}
		var version int64
		if pe == nil {
			version, pe = s.matchedVersion(r.Context(), key, c)
		}
		if pe != nil {
			s.fail(w, r, pe)
			return
		}
		err := s.store.Delete(r.Context(), key.Kind, key.Tenant, key.Name, version)
		switch {
		case errors.Is(err, registry.ErrNotFound):
			pe = preconditionFailed(key, err)
		case err != nil:
			pe = storeProblem(err)
		}
		if pe != nil {
			s.fail(w, r, pe)
			return
		}
		s.changed(r, "delete", key, version)
		w.WriteHeader(http.StatusNoContent)
	}
}

// preconditionRequired explains why a change without If-Match is refused:
// the resource is missing (404), file-managed (409), or exists, so the
// change needs the version that was read (428, RFC 6585 §3).
func (s *Server) preconditionRequired(r *http.Request, key registry.Key, cause error) *problem.Error {
	cur, err := s.store.Get(r.Context(), key.Kind, key.Tenant, key.Name)
	switch {
	case errors.Is(err, registry.ErrNotFound) && cause == nil:
		return storeProblem(err)
	case err == nil && cur.ManagedBy == registry.ManagedByFile:
		return problem.Wrap(problem.CodeAdminConflict, fileManagedDetail, fmt.Errorf("%s: %w", key, registry.ErrFileManaged))
	case err != nil && !errors.Is(err, registry.ErrNotFound):
		return storeProblem(err)
	}
	if cause == nil {
		cause = fmt.Errorf("%s exists and the request has no If-Match", key)
	}
	return problem.Wrap(problem.CodeAdminPreconditionRequired,
		key.String()+" exists: read it and send If-Match with its ETag to change it (or If-None-Match: * to create only).", cause)
}

// changed logs a successful write and tells the gateway.
func (s *Server) changed(r *http.Request, action string, key registry.Key, version int64) {
	ex := exchangeOf(r)
	s.log.Info("admin change", "request_id", ex.id, "principal", ex.principal.Name, "action", action,
		"kind", key.Kind, "tenant", key.Tenant, "name", key.Name, "version", version)
	s.onChange()
}

// readObject reads and strictly decodes the body as an object of kind k,
// whose key must be key. A body may leave out tenant and name; the path
// supplies them.
func readObject(r *http.Request, k kindInfo, key registry.Key) (registry.Object, *problem.Error) {
	body, err := io.ReadAll(r.Body)
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		return nil, problem.Wrap(problem.CodeRequestTooLarge, fmt.Sprintf("The request body is larger than %d bytes.", mbe.Limit), err)
	}
	if err != nil {
		return nil, problem.Wrap(problem.CodeAdminInvalid, "the request body could not be read", err)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, problem.New(problem.CodeAdminInvalid, fmt.Sprintf("the request body is empty: send the %s as a JSON object", k.noun))
	}
	obj, err := registry.DecodeObject(k.kind, withKey(k, key, body))
	if err != nil {
		return nil, problem.Wrap(problem.CodeAdminInvalid, err.Error(), err)
	}
	var fields []registry.FieldError
	got := obj.Key()
	if k.tenantScoped() && got.Tenant != key.Tenant {
		fields = append(fields, registry.FieldError{Field: "tenant", Message: fmt.Sprintf("the body names tenant %q but the URL names %q", got.Tenant, key.Tenant)})
	}
	if got.Name != key.Name {
		fields = append(fields, registry.FieldError{Field: "name", Message: fmt.Sprintf("the body names %q but the URL names %q", got.Name, key.Name)})
	}
	if len(fields) > 0 {
		ve := &registry.ValidationError{Key: key, Fields: fields}
		return nil, problem.Wrap(problem.CodeAdminInvalid, fieldDetail(fields), ve)
	}
	return obj, nil
}

// withKey adds the key's tenant and name to a JSON object body that lacks
// them. Anything else is returned unchanged for the decoder to judge.
func withKey(k kindInfo, key registry.Key, body []byte) []byte {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil || fields == nil {
		return body
	}
	changed := false
	set := func(field, value string) {
		if _, ok := fields[field]; !ok {
			fields[field], _ = json.Marshal(value) // a string always encodes
			changed = true
		}
	}
	set("name", key.Name)
	if k.tenantScoped() {
		set("tenant", key.Tenant)
	}
	if !changed {
		return body
	}
	out, err := json.Marshal(fields)
	if err != nil {
		return body
	}
	return out
}

// fieldDetail joins field errors as "field: message; field: message".
func fieldDetail(fields []registry.FieldError) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return strings.Join(parts, "; ")
}

// storeProblem maps a Store error to the problem the client sees; the
// error itself is kept for the log.
func storeProblem(err error) *problem.Error {
	var ve *registry.ValidationError
	switch {
	case errors.Is(err, registry.ErrStoreUnavailable):
		return problem.Wrap(problem.CodeAdminStoreUnavailable, "The registry database is unavailable; operators: see the log.", err)
	case errors.As(err, &ve):
		return problem.Wrap(problem.CodeAdminInvalid, fieldDetail(ve.Fields), err)
	case errors.Is(err, registry.ErrFileManaged):
		return problem.Wrap(problem.CodeAdminConflict, fileManagedDetail, err)
	case errors.Is(err, registry.ErrNotFound):
		return problem.Wrap(problem.CodeAdminNotFound, err.Error(), err)
	case errors.Is(err, registry.ErrAlreadyExists):
		return problem.Wrap(problem.CodeAdminConflict, err.Error(), err)
	case errors.Is(err, registry.ErrVersionConflict):
		return problem.Wrap(problem.CodeAdminPreconditionFailed, err.Error(), err)
	case errors.Is(err, registry.ErrInvalid):
		return problem.Wrap(problem.CodeAdminInvalid, err.Error(), err)
	}
	return problem.Wrap(problem.CodeInternal, "The request failed unexpectedly; operators: find the request_id in the log.", err)
}

// reloadBody answers a reload that took effect.
type reloadBody struct {
	Result string `json:"result"`
	APIs   int    `json:"apis"`
}

// reloadNow rebuilds the gateway's configuration from the file and the
// registry at once (admin role only): 200 when the new configuration
// serves, 422 admin.invalid naming its problems when it was rejected and
// the running one keeps serving.
func (s *Server) reloadNow(w http.ResponseWriter, r *http.Request) {
	ex := exchangeOf(r)
	if ex.principal.Role != RoleAdmin {
		s.fail(w, r, forbidden(ex.principal, "Reloading the gateway's configuration needs the admin role."))
		return
	}
	apis, err := s.reload(r.Context())
	if err != nil {
		s.fail(w, r, problem.Wrap(problem.CodeAdminInvalid, "The configuration was not reloaded; the running one keeps serving: "+err.Error(), err))
		return
	}
	s.log.Info("admin reload", "request_id", ex.id, "principal", ex.principal.Name, "apis", apis)
	s.writeJSON(w, r, http.StatusOK, reloadBody{Result: "reloaded", APIs: apis})
}

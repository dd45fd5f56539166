package admin

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/registry"
)

// servedDocument fetches the OpenAPI document through the real HTTPS
// listener and decodes it generically, as any client would.
func servedDocument(t *testing.T, f *fixture) map[string]any {
	t.Helper()
	r := f.admin().do(http.MethodGet, "/admin/v1/openapi.json", nil).want(t, http.StatusOK, "openapi.json")
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var doc map[string]any
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("the OpenAPI document is not JSON: %v", err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", doc["openapi"])
	}
	return doc
}

// documentedOperations lists "METHOD path" for every operation in doc.
func documentedOperations(t *testing.T, doc map[string]any) []string {
	t.Helper()
	var ops []string
	for path, item := range doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			ops = append(ops, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(ops)
	return ops
}

// TestOpenAPIMatchesRoutes checks the document against the mux both ways:
// every documented operation is served by exactly its own pattern, and every
// pattern the mux was given is documented. The mux is asked which pattern
// it would run, so a route missing from either side is caught.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	f := newFixture(t)
	doc := servedDocument(t, f)
	ops := documentedOperations(t, doc)

	var registered []string
	for _, rt := range f.srv.routes {
		registered = append(registered, rt.method+" "+rt.path)
	}
	sort.Strings(registered)
	if !slices.Equal(ops, registered) {
		t.Fatalf("documented operations:\n%s\nregistered routes:\n%s", strings.Join(ops, "\n"), strings.Join(registered, "\n"))
	}

	// Fill every template with sample values and ask the mux.
	sample := strings.NewReplacer("{tenant}", "acme", "{name}", "orders")
	methods := []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPost, http.MethodPatch}
	for path, item := range doc["paths"].(map[string]any) {
		for _, m := range methods {
			req := httptest.NewRequest(m, sample.Replace(path), nil)
			_, pattern := f.srv.mux.Handler(req)
			if _, documented := item.(map[string]any)[strings.ToLower(m)]; documented {
				if pattern != m+" "+path {
					t.Errorf("%s %s is documented but the mux serves it with %q", m, path, pattern)
				}
			} else if pattern != path {
				t.Errorf("%s %s is not documented but the mux serves it with %q, not the 405 fallback", m, path, pattern)
			}
		}
	}
	for _, path := range []string{"/admin/v1/widgets", "/admin/v1/apis/acme", "/admin/v1/audit/x", "/metrics"} {
		if _, pattern := f.srv.mux.Handler(httptest.NewRequest(http.MethodGet, path, nil)); pattern != "/" {
			t.Errorf("GET %s is served by %q, which the document does not describe", path, pattern)
		}
	}
}

// TestOpenAPIDocumentIsComplete checks what the document says about each
// operation: path parameters, references, and schemas that match the
// registry's types.
func TestOpenAPIDocumentIsComplete(t *testing.T) {
	f := newFixture(t)
	doc := servedDocument(t, f)
	components := doc["components"].(map[string]any)

	// Every $ref resolves.
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if k == "$ref" {
					ref, _ := child.(string)
					parts := strings.Split(strings.TrimPrefix(ref, "#/components/"), "/")
					if len(parts) != 2 || components[parts[0]] == nil || components[parts[0]].(map[string]any)[parts[1]] == nil {
						t.Errorf("%s: $ref %q does not resolve", at, ref)
					}
					continue
				}
				walk(child, at+"/"+k)
			}
		case []any:
			for _, child := range v {
				walk(child, at)
			}
		}
	}
	walk(doc, "#")

	// Every operation names each {parameter} of its path, has an id,
	// documents success and 401, and ids are unique.
	params := components["parameters"].(map[string]any)
	templateRe := regexp.MustCompile(`\{([a-z]+)\}`)
	ids := map[string]bool{}
	for path, item := range doc["paths"].(map[string]any) {
		var want []string
		for _, m := range templateRe.FindAllStringSubmatch(path, -1) {
			want = append(want, m[1])
		}
		for method, op := range item.(map[string]any) {
			op := op.(map[string]any)
			what := strings.ToUpper(method) + " " + path
			id, _ := op["operationId"].(string)
			if id == "" || ids[id] {
				t.Errorf("%s: operationId %q is empty or repeated", what, id)
			}
			ids[id] = true
			var got []string
			list, _ := op["parameters"].([]any)
			for _, p := range list {
				name := strings.TrimPrefix(p.(map[string]any)["$ref"].(string), "#/components/parameters/")
				if pp := params[name].(map[string]any); pp["in"] == "path" {
					got = append(got, pp["name"].(string))
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: path parameters %v, want %v", what, got, want)
			}
			responses := op["responses"].(map[string]any)
			if responses["401"] == nil {
				t.Errorf("%s: 401 is not documented", what)
			}
			if !slices.ContainsFunc(slices.Collect(maps.Keys(responses)), func(s string) bool { return strings.HasPrefix(s, "2") }) {
				t.Errorf("%s: no success response", what)
			}
		}
	}

	// The schemas of the bodies list exactly the JSON fields of the types
	// the registry decodes and encodes, so the document cannot drift from
	// them.
	schemas := components["schemas"].(map[string]any)
	types := map[string]any{
		"Tenant": registry.Tenant{}, "API": registry.API{}, "Application": registry.Application{},
		"CertificateRef": registry.CertificateRef{}, "OAuth2Client": registry.OAuth2Client{},
		"Plan": registry.Plan{}, "RateLimit": registry.RateLimit{}, "Quota": registry.Quota{},
		"Subscription": registry.Subscription{}, "Certificate": registry.Certificate{}, "TrustSet": registry.TrustSet{},
		"AuditEntry": registry.AuditEntry{}, "Whoami": whoamiBody{},
	}
	for name, v := range types {
		s, ok := schemas[name].(map[string]any)
		if !ok {
			t.Errorf("schema %s is missing", name)
			continue
		}
		var got []string
		for p := range s["properties"].(map[string]any) {
			got = append(got, p)
		}
		sort.Strings(got)
		if want := jsonFields(reflect.TypeOf(v)); !slices.Equal(got, want) {
			t.Errorf("schema %s has properties %v; the Go type has %v", name, got, want)
		}
	}
	for _, k := range kinds() {
		for _, suffix := range []string{"", "Resource", "List"} {
			if schemas[k.schema+suffix] == nil {
				t.Errorf("schema %s%s is missing", k.schema, suffix)
			}
		}
	}
	// The envelope matches what Resource.MarshalJSON writes.
	res := registry.Resource{Object: registry.API{Tenant: "acme", Name: "orders"}, Version: 1, ManagedBy: registry.ManagedByAPI}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var wire map[string]any
	if err := json.Unmarshal(b, &wire); err != nil {
		t.Fatal(err)
	}
	props := schemas["APIResource"].(map[string]any)["properties"].(map[string]any)
	for field := range wire {
		if props[field] == nil {
			t.Errorf("APIResource does not document %q", field)
		}
	}
}

// jsonFields lists the JSON names of a struct's fields, embedded structs
// flattened.
func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		if f.Anonymous {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

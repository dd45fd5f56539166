package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis/portcullis/internal/keymaterial"
	"github.com/portcullis/portcullis/internal/registry"
)

// This file is the command-line client of the admin API: apply, get and
// delete, in the manner of kubectl.

// adminFlags say how to reach and authenticate to the admin API. Secrets
// are named by environment variable or file, never given as flag values.
type adminFlags struct {
	Admin           string `help:"Base URL of the admin API (https only; default https://127.0.0.1:9443)." default:"https://127.0.0.1:9443" env:"PORTCULLIS_ADMIN" placeholder:"URL"`
	TokenEnv        string `help:"Environment variable holding an admin bearer token." placeholder:"VAR"`
	TokenFile       string `help:"File holding an admin bearer token (one trailing newline ignored)." placeholder:"FILE" type:"path"`
	Cert            string `help:"Admin client certificate (PEM, optionally followed by its chain) for mutual TLS." placeholder:"FILE" type:"path"`
	Key             string `help:"Private key of --cert (PEM)." placeholder:"FILE" type:"path"`
	KeyPasswordEnv  string `help:"Environment variable holding the password of an encrypted --key." placeholder:"VAR"`
	KeyPasswordFile string `help:"File holding the password of an encrypted --key." placeholder:"FILE" type:"path"`
	CACert          string `name:"cacert" help:"CA certificates (PEM) that issued the admin listener's certificate; default: the system roots." env:"PORTCULLIS_ADMIN_CACERT" placeholder:"FILE" type:"path"`
}

// adminClient sends requests to one admin API.
type adminClient struct {
	base  string
	token string
	hc    *http.Client
	// authenticated says whether a token or certificate was given, for the
	// hint on a 401.
	authenticated bool
}

// requestTimeout bounds each admin request.
const requestTimeout = 30 * time.Second

// client checks the flags and builds the client. It refuses plain HTTP:
// the token and every resource would cross the network in clear.
func (f adminFlags) client() (*adminClient, error) {
	u, err := url.Parse(f.Admin)
	switch {
	case err != nil:
		return nil, fmt.Errorf("--admin %q: %w", f.Admin, err)
	case u.Scheme != "https":
		return nil, fmt.Errorf("--admin %q: the admin API is reached over https only (e.g. https://127.0.0.1:9443)", f.Admin)
	case u.Host == "":
		return nil, fmt.Errorf("--admin %q: no host", f.Admin)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("--admin %q: give only scheme, host, port and an optional path prefix", f.Admin)
	}
	c := &adminClient{base: "https://" + u.Host + strings.TrimRight(u.EscapedPath(), "/")}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CACert != "" {
		pem, err := os.ReadFile(f.CACert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert %q: no PEM certificate found", f.CACert)
		}
		cfg.RootCAs = pool
	}
	switch {
	case f.Cert != "" && f.Key != "":
		var pw []byte
		if f.KeyPasswordEnv != "" || f.KeyPasswordFile != "" {
			if pw, err = keymaterial.ReadSecret(keymaterial.SecretRef{Env: f.KeyPasswordEnv, File: f.KeyPasswordFile}); err != nil {
				return nil, fmt.Errorf("key password: %w", err)
			}
		}
		id, err := keymaterial.LoadIdentity(keymaterial.IdentitySource{CertFile: f.Cert, KeyFile: f.Key, Password: pw}, time.Now())
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{id.Certificate}
		c.authenticated = true
	case f.Cert != "" || f.Key != "":
		return nil, errors.New("--cert and --key go together: give both or neither")
	}
	if f.TokenEnv != "" || f.TokenFile != "" {
		tok, err := keymaterial.ReadSecret(keymaterial.SecretRef{Env: f.TokenEnv, File: f.TokenFile})
		if err != nil {
			return nil, fmt.Errorf("admin token: %w", err)
		}
		t := strings.TrimSpace(string(tok))
		if t == "" || strings.ContainsFunc(t, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			return nil, errors.New("admin token: empty, or holds spaces or control characters")
		}
		c.token = t
		c.authenticated = true
	}
	c.hc = &http.Client{
		Timeout:   requestTimeout,
		Transport: &http.Transport{TLSClientConfig: cfg, Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true},
		// A redirect would carry the token elsewhere; the admin API never
		// sends one.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// problemError is a problem document the admin API answered with.
type problemError struct {
	Status    int                   `json:"status"`
	Code      string                `json:"code"`
	Title     string                `json:"title"`
	Detail    string                `json:"detail"`
	RequestID string                `json:"request_id"`
	Errors    []registry.FieldError `json:"errors"`
	// hint is advice the client adds.
	hint string
}

func (e *problemError) Error() string {
	var b strings.Builder
	b.WriteString(e.Code)
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	} else if e.Title != "" {
		b.WriteString(": " + e.Title)
	}
	fmt.Fprintf(&b, " (HTTP %d", e.Status)
	if e.RequestID != "" {
		b.WriteString(", request_id " + e.RequestID)
	}
	b.WriteString(")")
	for _, f := range e.Errors {
		fmt.Fprintf(&b, "\n  %s: %s", f.Field, f.Message)
	}
	if e.hint != "" {
		b.WriteString("\n  hint: " + e.hint)
	}
	return b.String()
}

// isNotFound reports whether err is the admin API's 404.
func isNotFound(err error) bool {
	var pe *problemError
	return errors.As(err, &pe) && pe.Status == http.StatusNotFound
}

// maxResponse bounds what is read of one response.
const maxResponse = 64 << 20

// call sends one request with an optional JSON body and extra headers (in
// pairs). A 2xx body is decoded into out when out is not nil; any other
// status is returned as a *problemError.
func (c *adminClient) call(ctx context.Context, method, path string, body []byte, out any, header ...string) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var cve *tls.CertificateVerificationError
		if errors.As(err, &cve) {
			return fmt.Errorf("%w\n  hint: pass --cacert FILE (or set PORTCULLIS_ADMIN_CACERT) with the CA of the admin listener's certificate", err)
		}
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("%s %s: reading the response: %w", method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		if out == nil || resp.StatusCode == http.StatusNoContent {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: the response is not the expected JSON: %w", method, path, err)
		}
		return nil
	}
	pe := &problemError{}
	if json.Unmarshal(data, pe) != nil || pe.Code == "" {
		snippet := strings.TrimSpace(string(data))
		if len(snippet) > 200 {
			snippet = snippet[:200] + "…"
		}
		return fmt.Errorf("%s %s: HTTP %s (not a problem document): %s", method, path, resp.Status, snippet)
	}
	pe.Status = resp.StatusCode
	if resp.StatusCode == http.StatusUnauthorized && !c.authenticated {
		pe.hint = "authenticate with --token-env VAR, --token-file FILE, or --cert FILE --key FILE"
	}
	return pe
}

// adminKind ties a kind to its collection in URLs.
type adminKind struct {
	kind    registry.Kind
	segment string
}

func (k adminKind) tenantScoped() bool { return k.kind != registry.KindTenant }

// adminKinds lists the kinds in registry.Kinds order, which is also the
// order apply creates them in: a kind comes after those it refers to.
func adminKinds() []adminKind {
	return []adminKind{
		{registry.KindTenant, "tenants"},
		{registry.KindCertificate, "certificates"},
		{registry.KindTrustSet, "trust_sets"},
		{registry.KindAPI, "apis"},
		{registry.KindPlan, "plans"},
		{registry.KindApplication, "applications"},
		{registry.KindSubscription, "subscriptions"},
	}
}

// kindNamed finds a kind by its name or its plural ("plan", "plans";
// "trust-set" too).
func kindNamed(s string) (adminKind, error) {
	n := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "-", "_")
	var names []string
	for _, k := range adminKinds() {
		if n == string(k.kind) || n == k.segment {
			return k, nil
		}
		names = append(names, string(k.kind))
	}
	return adminKind{}, fmt.Errorf("unknown kind %q (kinds: %s)", s, strings.Join(names, ", "))
}

func kindOrder(k registry.Kind) int {
	return slices.IndexFunc(adminKinds(), func(a adminKind) bool { return a.kind == k })
}

// itemPath is the URL path of one resource.
func itemPath(k adminKind, tenant, name string) string {
	if k.tenantScoped() {
		return "/admin/v1/" + k.segment + "/" + url.PathEscape(tenant) + "/" + url.PathEscape(name)
	}
	return "/admin/v1/" + k.segment + "/" + url.PathEscape(name)
}

// ref names a resource in output lines: kind/tenant/name, or kind/name for
// tenants.
func ref(k registry.Kind, tenant, name string) string {
	if tenant == "" {
		return string(k) + "/" + name
	}
	return string(k) + "/" + tenant + "/" + name
}

// remoteResource is a resource as the admin API returns it. The spec stays
// raw: it is compared and printed, not interpreted.
type remoteResource struct {
	Kind      registry.Kind      `json:"kind"`
	Tenant    string             `json:"tenant,omitempty"`
	Name      string             `json:"name"`
	Version   int64              `json:"version"`
	ManagedBy registry.ManagedBy `json:"managed_by"`
	CreatedAt time.Time          `json:"created_at"`
	UpdatedAt time.Time          `json:"updated_at"`
	Spec      json.RawMessage    `json:"spec"`
}

func (r remoteResource) ref() string { return ref(r.Kind, r.Tenant, r.Name) }

func (r remoteResource) etag() string { return strconv.Quote(strconv.FormatInt(r.Version, 10)) }

// getOne reads one resource; found is false when it does not exist.
func (c *adminClient) getOne(ctx context.Context, k adminKind, tenant, name string) (r remoteResource, found bool, err error) {
	err = c.call(ctx, http.MethodGet, itemPath(k, tenant, name), nil, &r)
	if isNotFound(err) {
		return r, false, nil
	}
	return r, err == nil, err
}

// listAll reads every page of a kind's resources; tenant "" lists every
// tenant the caller may see.
func (c *adminClient) listAll(ctx context.Context, k adminKind, tenant string) ([]json.RawMessage, error) {
	var all []json.RawMessage
	token := ""
	for {
		q := url.Values{"limit": {strconv.Itoa(registry.MaxPageSize)}}
		if tenant != "" && k.tenantScoped() {
			q.Set("tenant", tenant)
		}
		if token != "" {
			q.Set("page_token", token)
		}
		var page struct {
			Items         []json.RawMessage `json:"items"`
			NextPageToken string            `json:"next_page_token"`
		}
		if err := c.call(ctx, http.MethodGet, "/admin/v1/"+k.segment+"?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextPageToken == "" || page.NextPageToken == token {
			return all, nil
		}
		token = page.NextPageToken
	}
}

// --- apply ---

type applyCmd struct {
	File   string `short:"f" required:"" help:"YAML file of resources, one per document (---), each {kind, spec}; - reads standard input." placeholder:"FILE"`
	Prune  bool   `help:"Delete API-managed resources of the file's kinds, in the file's tenants, that the file does not name (file-managed ones are never touched)."`
	DryRun bool   `help:"Print what would change, with a diff of each resource, and change nothing."`
	Tenant string `help:"Tenant of the resources that name none (default \"default\")." default:"default" placeholder:"T"`
	adminFlags
}

// fileResource is one resource the file declares.
type fileResource struct {
	kind adminKind
	key  registry.Key
	// where is "FILE:LINE", for messages.
	where string
	// body is the object as JSON, as sent in a PUT.
	body []byte
}

func (r fileResource) ref() string { return ref(r.key.Kind, r.key.Tenant, r.key.Name) }

// documentKeys are the keys a document may have: kind and spec, tenant and
// name beside the spec, and the metadata `get -o yaml` prints (ignored) so
// its output can be applied again.
var documentKeys = []string{"kind", "tenant", "name", "spec", "version", "managed_by", "created_at", "updated_at"}

// readResources parses and checks every document of the file: each must
// decode strictly as its kind and validate on its own, and no resource may
// be declared twice. Nothing is sent before the whole file is good.
func readResources(path, defaultTenant string) ([]fileResource, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, maxResponse))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []fileResource
	seen := map[registry.Key]string{}
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		where := fmt.Sprintf("%s:%d", path, n.Line)
		var doc any
		if err := n.Decode(&doc); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if doc == nil {
			continue // an empty document, e.g. after a trailing ---
		}
		r, err := readDocument(doc, defaultTenant)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		r.where = where
		if first, dup := seen[r.key]; dup {
			return nil, fmt.Errorf("%s: %s is declared twice (first at %s)", where, r.ref(), first)
		}
		seen[r.key] = where
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no resources (each document is {kind: ..., spec: {...}})", path)
	}
	slices.SortStableFunc(out, func(a, b fileResource) int { return kindOrder(a.key.Kind) - kindOrder(b.key.Kind) })
	return out, nil
}

// readDocument turns one decoded document into a checked resource.
func readDocument(doc any, defaultTenant string) (fileResource, error) {
	v, err := jsonable(doc, "")
	if err != nil {
		return fileResource{}, err
	}
	top, ok := v.(map[string]any)
	if !ok {
		return fileResource{}, errors.New("a document must be a mapping: {kind: ..., spec: {...}}")
	}
	for key := range top {
		if !slices.Contains(documentKeys, key) {
			return fileResource{}, fmt.Errorf("unknown key %q (valid: %s)", key, strings.Join(documentKeys, ", "))
		}
	}
	kindName, _ := top["kind"].(string)
	if kindName == "" {
		return fileResource{}, errors.New("kind: required (one of tenant, certificate, trust_set, api, plan, application, subscription)")
	}
	k, err := kindNamed(kindName)
	if err != nil {
		return fileResource{}, fmt.Errorf("kind: %w", err)
	}
	spec := map[string]any{}
	if s, present := top["spec"]; present && s != nil {
		if spec, ok = s.(map[string]any); !ok {
			return fileResource{}, errors.New("spec: must be a mapping of the resource's fields")
		}
	}
	// tenant and name may sit in the spec, beside it, or both if they agree.
	merge := func(field, fallback string) (string, error) {
		inSpec, specHas := spec[field]
		beside, besideHas := top[field]
		s1, ok1 := inSpec.(string)
		s2, ok2 := beside.(string)
		switch {
		case specHas && !ok1:
			return "", fmt.Errorf("spec.%s: must be a string", field)
		case besideHas && !ok2:
			return "", fmt.Errorf("%s: must be a string", field)
		case specHas && besideHas && s1 != s2:
			return "", fmt.Errorf("%s: %q beside the spec but %q in it", field, s2, s1)
		case specHas:
			return s1, nil
		case besideHas:
			return s2, nil
		}
		return fallback, nil
	}
	name, err := merge("name", "")
	if err != nil {
		return fileResource{}, err
	}
	if name == "" {
		return fileResource{}, fmt.Errorf("spec.name: required: every %s needs a name", k.kind)
	}
	spec["name"] = name
	if k.tenantScoped() {
		tenant, err := merge("tenant", defaultTenant)
		if err != nil {
			return fileResource{}, err
		}
		spec["tenant"] = tenant
	} else if _, has := top["tenant"]; has {
		return fileResource{}, errors.New("tenant: a tenant belongs to no tenant; leave the key out")
	}
	body, err := json.Marshal(spec)
	if err != nil {
		return fileResource{}, fmt.Errorf("spec: %w", err)
	}
	obj, err := registry.DecodeObject(k.kind, body)
	if err != nil {
		return fileResource{}, fmt.Errorf("spec: %w", err)
	}
	if err := obj.Validate(); err != nil {
		return fileResource{}, err
	}
	body, err = json.Marshal(obj)
	if err != nil {
		return fileResource{}, err
	}
	return fileResource{kind: k, key: obj.Key(), body: body}, nil
}

// jsonable converts decoded YAML into values encoding/json can write:
// mapping keys must be strings, and numbers finite.
func jsonable(v any, path string) (any, error) {
	at := func() string {
		if path == "" {
			return "the document"
		}
		return path
	}
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			c, err := jsonable(e, joinPath(path, k))
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("%s: mapping key %v is not a string", at(), k)
			}
			c, err := jsonable(e, joinPath(path, ks))
			if err != nil {
				return nil, err
			}
			out[ks] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			c, err := jsonable(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case float64:
		if math.IsInf(t, 0) || math.IsNaN(t) {
			return nil, fmt.Errorf("%s: %v is not a JSON number", at(), t)
		}
	case time.Time:
		return t.Format(time.RFC3339Nano), nil
	}
	return v, nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// canonicalJSON indents JSON with sorted keys, so equal content compares
// and diffs equal whatever order its keys came in.
func canonicalJSON(data []byte) ([]byte, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return json.MarshalIndent(v, "", "  ")
}

// applyAction is what apply did or, in a dry run, would do to a resource.
type applyAction string

const (
	actionCreated    applyAction = "created"
	actionConfigured applyAction = "configured"
	actionUnchanged  applyAction = "unchanged"
	actionDeleted    applyAction = "deleted"
)

func (c *applyCmd) Run(g *globals) error {
	resources, err := readResources(c.File, c.Tenant)
	if err != nil {
		return err
	}
	client, err := c.client()
	if err != nil {
		return err
	}
	ctx := context.Background()
	report := func(r string, a applyAction) {
		if c.DryRun && a != actionUnchanged {
			fmt.Fprintf(g.stdout, "%s %s (dry run)\n", r, a)
			return
		}
		fmt.Fprintf(g.stdout, "%s %s\n", r, a)
	}
	for _, r := range resources {
		a, err := c.applyOne(ctx, g.stdout, client, r)
		if err != nil {
			return fmt.Errorf("%s (%s): %w", r.ref(), r.where, err)
		}
		report(r.ref(), a)
	}
	if !c.Prune {
		return nil
	}
	return c.prune(ctx, g.stdout, client, resources, report)
}

// applyOne creates r, replaces it when its spec differs, or leaves it.
func (c *applyCmd) applyOne(ctx context.Context, w io.Writer, client *adminClient, r fileResource) (applyAction, error) {
	cur, found, err := client.getOne(ctx, r.kind, r.key.Tenant, r.key.Name)
	if err != nil {
		return "", err
	}
	want, err := canonicalJSON(r.body)
	if err != nil {
		return "", err
	}
	path := itemPath(r.kind, r.key.Tenant, r.key.Name)
	if !found {
		if c.DryRun {
			writeDiff(w, r.ref()+" (absent)", r.ref()+" ("+r.where+")", nil, want)
			return actionCreated, nil
		}
		return actionCreated, client.call(ctx, http.MethodPut, path, r.body, nil, "If-None-Match", "*")
	}
	have, err := canonicalJSON(cur.Spec)
	if err != nil {
		return "", fmt.Errorf("the stored spec: %w", err)
	}
	if bytes.Equal(have, want) {
		return actionUnchanged, nil
	}
	if c.DryRun {
		old := fmt.Sprintf("%s (version %d, managed by %s)", r.ref(), cur.Version, cur.ManagedBy)
		writeDiff(w, old, r.ref()+" ("+r.where+")", have, want)
		return actionConfigured, nil
	}
	return actionConfigured, client.call(ctx, http.MethodPut, path, r.body, nil, "If-Match", cur.etag())
}

// prune deletes, in reverse apply order, the API-managed resources of the
// file's kinds and tenants that the file does not name.
func (c *applyCmd) prune(ctx context.Context, w io.Writer, client *adminClient, resources []fileResource, report func(string, applyAction)) error {
	named := map[registry.Key]bool{}
	kinds := map[registry.Kind]bool{}
	tenantSet := map[string]bool{}
	for _, r := range resources {
		named[r.key] = true
		kinds[r.key.Kind] = true
		if r.key.Tenant != "" {
			tenantSet[r.key.Tenant] = true
		}
	}
	tenants := make([]string, 0, len(tenantSet))
	for t := range tenantSet {
		tenants = append(tenants, t)
	}
	slices.Sort(tenants)
	order := adminKinds()
	slices.Reverse(order)
	for _, k := range order {
		if !kinds[k.kind] {
			continue
		}
		scopes := tenants
		if !k.tenantScoped() {
			scopes = []string{""}
		}
		for _, t := range scopes {
			items, err := client.listAll(ctx, k, t)
			if err != nil {
				return fmt.Errorf("listing %s to prune: %w", k.segment, err)
			}
			for _, raw := range items {
				var cur remoteResource
				if err := json.Unmarshal(raw, &cur); err != nil {
					return fmt.Errorf("listing %s to prune: %w", k.segment, err)
				}
				if cur.ManagedBy != registry.ManagedByAPI || named[registry.Key{Kind: cur.Kind, Tenant: cur.Tenant, Name: cur.Name}] {
					continue
				}
				if c.DryRun {
					have, err := canonicalJSON(cur.Spec)
					if err != nil {
						return fmt.Errorf("%s: the stored spec: %w", cur.ref(), err)
					}
					writeDiff(w, fmt.Sprintf("%s (version %d, managed by %s)", cur.ref(), cur.Version, cur.ManagedBy), cur.ref()+" (pruned)", have, nil)
				} else if err := client.call(ctx, http.MethodDelete, itemPath(k, cur.Tenant, cur.Name), nil, nil, "If-Match", cur.etag()); err != nil {
					return fmt.Errorf("pruning %s: %w", cur.ref(), err)
				}
				report(cur.ref(), actionDeleted)
			}
		}
	}
	return nil
}

// --- diff ---

type diffOp struct {
	kind byte // ' ', '-' or '+'
	line string
}

// diffLines is a longest-common-subsequence line diff; resources are small.
func diffLines(a, b []string) []diffOp {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []diffOp
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case a[i] == b[j]:
			ops = append(ops, diffOp{' ', a[i]})
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			ops = append(ops, diffOp{'-', a[i]})
			i++
		default:
			ops = append(ops, diffOp{'+', b[j]})
			j++
		}
	}
	for ; i < n; i++ {
		ops = append(ops, diffOp{'-', a[i]})
	}
	for ; j < m; j++ {
		ops = append(ops, diffOp{'+', b[j]})
	}
	return ops
}

// diffContext is how many unchanged lines are shown around a change.
const diffContext = 3

// writeDiff prints a unified-style diff of two canonical JSON documents
// (nil for absent): "- " lines are removed, "+ " lines added, and runs of
// unchanged lines far from any change are shown as "  ...".
func writeDiff(w io.Writer, oldName, newName string, old, cur []byte) {
	split := func(b []byte) []string {
		if len(b) == 0 {
			return nil
		}
		return strings.Split(string(b), "\n")
	}
	ops := diffLines(split(old), split(cur))
	near := make([]bool, len(ops))
	for i, op := range ops {
		if op.kind == ' ' {
			continue
		}
		for j := max(0, i-diffContext); j <= min(len(ops)-1, i+diffContext); j++ {
			near[j] = true
		}
	}
	fmt.Fprintf(w, "--- %s\n+++ %s\n", oldName, newName)
	elided := false
	for i, op := range ops {
		if !near[i] {
			if !elided {
				fmt.Fprintln(w, "  ...")
				elided = true
			}
			continue
		}
		elided = false
		fmt.Fprintf(w, "%c %s\n", op.kind, op.line)
	}
}

// --- get ---

type getCmd struct {
	Kind   string `arg:"" help:"Kind: tenant, certificate, trust_set, api, plan, application or subscription (plurals accepted)."`
	Name   string `arg:"" optional:"" help:"Name of one resource; without it, every resource of the kind is listed."`
	Tenant string `help:"Tenant (default: every tenant you may see for a list, \"default\" for one resource)." placeholder:"T"`
	Output string `short:"o" enum:"table,yaml,json" default:"table" help:"Output: table, yaml (documents apply -f accepts) or json."`
	adminFlags
}

func (c *getCmd) Run(g *globals) error {
	k, err := kindNamed(c.Kind)
	if err != nil {
		return err
	}
	client, err := c.client()
	if err != nil {
		return err
	}
	ctx := context.Background()
	var raws []json.RawMessage
	if c.Name != "" {
		tenant := c.Tenant
		switch {
		case !k.tenantScoped():
			tenant = ""
		case tenant == "":
			tenant = DefaultTenant
		}
		var raw json.RawMessage
		if err := client.call(ctx, http.MethodGet, itemPath(k, tenant, c.Name), nil, &raw); err != nil {
			return fmt.Errorf("%s: %w", ref(k.kind, tenant, c.Name), err)
		}
		raws = []json.RawMessage{raw}
	} else if raws, err = client.listAll(ctx, k, c.Tenant); err != nil {
		return fmt.Errorf("listing %s: %w", k.segment, err)
	}
	items := make([]remoteResource, len(raws))
	for i, raw := range raws {
		if err := json.Unmarshal(raw, &items[i]); err != nil {
			return fmt.Errorf("the admin API's answer: %w", err)
		}
	}
	switch c.Output {
	case "json":
		var out any = map[string]any{"items": raws}
		if c.Name != "" {
			out = raws[0]
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(g.stdout, "%s\n", b)
		return err
	case "yaml":
		return writeYAML(g.stdout, items)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tTENANT\tNAME\tVERSION\tMANAGED_BY\tUPDATED")
	for _, r := range items {
		tenant := r.Tenant
		if tenant == "" {
			tenant = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", r.Kind, tenant, r.Name, r.Version, r.ManagedBy, r.UpdatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// yamlResource is the order get -o yaml writes a resource's keys in.
type yamlResource struct {
	Kind      registry.Kind      `yaml:"kind"`
	Tenant    string             `yaml:"tenant,omitempty"`
	Name      string             `yaml:"name"`
	Version   int64              `yaml:"version"`
	ManagedBy registry.ManagedBy `yaml:"managed_by"`
	CreatedAt string             `yaml:"created_at"`
	UpdatedAt string             `yaml:"updated_at"`
	Spec      any                `yaml:"spec"`
}

// writeYAML prints resources as YAML documents separated by ---.
func writeYAML(w io.Writer, items []remoteResource) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	for _, r := range items {
		dec := json.NewDecoder(bytes.NewReader(r.Spec))
		dec.UseNumber()
		var spec any
		if err := dec.Decode(&spec); err != nil {
			return fmt.Errorf("%s: spec: %w", r.ref(), err)
		}
		err := enc.Encode(yamlResource{
			Kind: r.Kind, Tenant: r.Tenant, Name: r.Name, Version: r.Version, ManagedBy: r.ManagedBy,
			CreatedAt: r.CreatedAt.UTC().Format(time.RFC3339), UpdatedAt: r.UpdatedAt.UTC().Format(time.RFC3339),
			Spec: plainNumbers(spec),
		})
		if err != nil {
			return err
		}
	}
	return enc.Close()
}

// plainNumbers replaces json.Numbers with int64 or float64, which YAML
// writes as numbers rather than strings.
func plainNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = plainNumbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = plainNumbers(e)
		}
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		if f, err := t.Float64(); err == nil {
			return f
		}
		return t.String()
	}
	return v
}

// --- delete ---

type deleteCmd struct {
	Kind   string `arg:"" help:"Kind: tenant, certificate, trust_set, api, plan, application or subscription (plurals accepted)."`
	Name   string `arg:"" help:"Name of the resource."`
	Tenant string `help:"Tenant of the resource (default \"default\"; ignored for tenants)." default:"default" placeholder:"T"`
	adminFlags
}

// Run reads the resource for its version, then deletes exactly that
// version (If-Match), so a concurrent change is never deleted unseen.
func (c *deleteCmd) Run(g *globals) error {
	k, err := kindNamed(c.Kind)
	if err != nil {
		return err
	}
	tenant := c.Tenant
	if !k.tenantScoped() {
		tenant = ""
	}
	client, err := c.client()
	if err != nil {
		return err
	}
	ctx := context.Background()
	r := ref(k.kind, tenant, c.Name)
	var cur remoteResource
	if err := client.call(ctx, http.MethodGet, itemPath(k, tenant, c.Name), nil, &cur); err != nil {
		return fmt.Errorf("%s: %w", r, err)
	}
	if err := client.call(ctx, http.MethodDelete, itemPath(k, tenant, c.Name), nil, nil, "If-Match", cur.etag()); err != nil {
		return fmt.Errorf("%s: %w", r, err)
	}
	fmt.Fprintf(g.stdout, "%s deleted\n", r)
	return nil
}

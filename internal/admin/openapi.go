package admin

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/portcullis/portcullis/internal/problem"
	"github.com/portcullis/portcullis/internal/registry"
)

// The OpenAPI 3.1 objects this package uses, with only the fields it needs
// (https://spec.openapis.org/oas/v3.1.0).
type (
	oaDocument struct {
		OpenAPI    string                            `json:"openapi"`
		Info       oaInfo                            `json:"info"`
		Security   []map[string][]string             `json:"security"`
		Tags       []oaTag                           `json:"tags"`
		Paths      map[string]map[string]oaOperation `json:"paths"`
		Components oaComponents                      `json:"components"`
	}
	oaInfo struct {
		Title       string `json:"title"`
		Version     string `json:"version"`
		Description string `json:"description"`
	}
	oaTag struct {
		Name string `json:"name"`
	}
	oaOperation struct {
		OperationID string                 `json:"operationId"`
		Summary     string                 `json:"summary"`
		Tags        []string               `json:"tags"`
		Parameters  []oaRef                `json:"parameters,omitempty"`
		RequestBody *oaRequestBody         `json:"requestBody,omitempty"`
		Responses   map[string]*oaResponse `json:"responses"`
	}
	oaRef struct {
		Ref string `json:"$ref"`
	}
	oaParameter struct {
		Name        string    `json:"name"`
		In          string    `json:"in"`
		Description string    `json:"description"`
		Required    bool      `json:"required,omitempty"`
		Schema      *oaSchema `json:"schema"`
	}
	oaRequestBody struct {
		Description string                 `json:"description"`
		Required    bool                   `json:"required"`
		Content     map[string]oaMediaType `json:"content"`
	}
	oaMediaType struct {
		Schema *oaSchema `json:"schema"`
	}
	oaResponse struct {
		Ref         string                 `json:"$ref,omitempty"`
		Description string                 `json:"description,omitempty"`
		Headers     map[string]*oaHeader   `json:"headers,omitempty"`
		Content     map[string]oaMediaType `json:"content,omitempty"`
	}
	oaHeader struct {
		Description string    `json:"description"`
		Schema      *oaSchema `json:"schema"`
	}
	oaSecurityScheme struct {
		Type        string `json:"type"`
		Scheme      string `json:"scheme,omitempty"`
		Description string `json:"description"`
	}
	oaComponents struct {
		Schemas         map[string]*oaSchema         `json:"schemas"`
		Parameters      map[string]*oaParameter      `json:"parameters"`
		Responses       map[string]*oaResponse       `json:"responses"`
		SecuritySchemes map[string]*oaSecurityScheme `json:"securitySchemes"`
	}
	// oaSchema is a JSON Schema 2020-12 subset, OpenAPI 3.1's dialect.
	oaSchema struct {
		Ref                  string               `json:"$ref,omitempty"`
		Type                 string               `json:"type,omitempty"`
		Description          string               `json:"description,omitempty"`
		Format               string               `json:"format,omitempty"`
		Pattern              string               `json:"pattern,omitempty"`
		Const                string               `json:"const,omitempty"`
		Enum                 []string             `json:"enum,omitempty"`
		Minimum              *int64               `json:"minimum,omitempty"`
		Maximum              *int64               `json:"maximum,omitempty"`
		MaxLength            *int64               `json:"maxLength,omitempty"`
		MinItems             *int64               `json:"minItems,omitempty"`
		Items                *oaSchema            `json:"items,omitempty"`
		Properties           map[string]*oaSchema `json:"properties,omitempty"`
		Required             []string             `json:"required,omitempty"`
		AdditionalProperties *bool                `json:"additionalProperties,omitempty"`
	}
)

func ref(schema string) *oaSchema { return &oaSchema{Ref: "#/components/schemas/" + schema} }
func num(n int64) *int64          { return &n }

func str(description string) *oaSchema { return &oaSchema{Type: "string", Description: description} }

func integer(description string, minimum int64) *oaSchema {
	return &oaSchema{Type: "integer", Description: description, Minimum: num(minimum)}
}

func array(items *oaSchema, description string) *oaSchema {
	return &oaSchema{Type: "array", Items: items, Description: description}
}

// object is a closed object schema: the API decodes bodies strictly.
func object(description string, props map[string]*oaSchema, required ...string) *oaSchema {
	closed := false
	return &oaSchema{Type: "object", Description: description, Properties: props, Required: required, AdditionalProperties: &closed}
}

// nameSchema is the registry's rule for names.
func nameSchema(description string) *oaSchema {
	return &oaSchema{Type: "string", Description: description, Pattern: `^[a-zA-Z0-9][a-zA-Z0-9._-]*$`, MaxLength: num(128)}
}

func hashSchema(description string) *oaSchema {
	return &oaSchema{Type: "string", Description: description, Pattern: `^sha256:[0-9a-fA-F]{64}$`}
}

// openAPI describes routes, every one of them and nothing else.
func openAPI(routes []route) oaDocument {
	doc := oaDocument{
		OpenAPI: "3.1.0",
		Info: oaInfo{
			Title:   "Portcullis admin API",
			Version: "v1",
			Description: "Manage the registry of a Portcullis gateway: tenants, APIs, applications, plans, subscriptions, " +
				"certificates and trust sets. Authenticate with an admin client certificate (mutual TLS) or an admin bearer token. " +
				"Changes to existing resources need If-Match with the ETag that was read; errors are RFC 9457 problem documents.",
		},
		Security: []map[string][]string{{"adminCertificate": {}}, {"adminToken": {}}},
		Paths:    map[string]map[string]oaOperation{},
		Components: oaComponents{
			Schemas:    schemas(),
			Parameters: parameters(),
			Responses:  map[string]*oaResponse{},
			SecuritySchemes: map[string]*oaSecurityScheme{
				"adminCertificate": {Type: "mutualTLS", Description: "A client certificate that an admin rule of the gateway accepts."},
				"adminToken":       {Type: "http", Scheme: "bearer", Description: "An admin token whose SHA-256 hash the gateway is configured with."},
			},
		},
	}
	for _, rt := range routes {
		if !slices.ContainsFunc(doc.Tags, func(t oaTag) bool { return t.Name == rt.tag }) {
			doc.Tags = append(doc.Tags, oaTag{Name: rt.tag})
		}
		op := oaOperation{OperationID: rt.id, Summary: rt.summary, Tags: []string{rt.tag}, Responses: map[string]*oaResponse{}}
		for _, p := range rt.params {
			op.Parameters = append(op.Parameters, oaRef{Ref: "#/components/parameters/" + p})
		}
		if rt.body != "" {
			op.RequestBody = &oaRequestBody{
				Description: "The resource. tenant and name may be left out; the path supplies them, and when present they must equal it.",
				Required:    true,
				Content:     map[string]oaMediaType{"application/json": {Schema: ref(rt.body)}},
			}
		}
		for status, schema := range rt.ok {
			resp := &oaResponse{Description: http.StatusText(status)}
			if schema != "" {
				resp.Content = map[string]oaMediaType{"application/json": {Schema: ref(schema)}}
			}
			if rt.etag {
				resp.Headers = map[string]*oaHeader{"ETag": {Description: "The resource's version, for If-Match.", Schema: str("")}}
			}
			if status == http.StatusCreated {
				if resp.Headers == nil {
					resp.Headers = map[string]*oaHeader{}
				}
				resp.Headers["Location"] = &oaHeader{Description: "The path of the created resource.", Schema: str("")}
			}
			op.Responses[strconv.Itoa(status)] = resp
		}
		for _, code := range append(rt.fails, commonFailures()...) {
			status := strconv.Itoa(problem.Catalogue[code].Status)
			name := problemResponseName(code)
			doc.Components.Responses[name] = &oaResponse{
				Description: problem.Catalogue[code].Title + " (code " + code + ").",
				Content:     map[string]oaMediaType{"application/problem+json": {Schema: ref("Problem")}},
			}
			op.Responses[status] = &oaResponse{Ref: "#/components/responses/" + name}
		}
		if doc.Paths[rt.path] == nil {
			doc.Paths[rt.path] = map[string]oaOperation{}
		}
		doc.Paths[rt.path][strings.ToLower(rt.method)] = op
	}
	return doc
}

// problemResponseName turns a code such as "admin.not_found" into a
// component name, "AdminNotFound".
func problemResponseName(code string) string {
	var b strings.Builder
	for part := range strings.FieldsFuncSeq(code, func(r rune) bool { return r == '.' || r == '_' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

func parameters() map[string]*oaParameter {
	return map[string]*oaParameter{
		"tenant": {Name: "tenant", In: "path", Required: true, Description: "The tenant the resource belongs to.", Schema: nameSchema("")},
		"name":   {Name: "name", In: "path", Required: true, Description: "The resource's name.", Schema: nameSchema("")},
		"tenantQuery": {Name: "tenant", In: "query", Schema: &oaSchema{Type: "string"},
			Description: "The tenant to list. Required for a tenant-admin, who may list only its own tenant; an admin may leave it out or pass * for every tenant."},
		"limit": {Name: "limit", In: "query", Description: "The most items to return.",
			Schema: &oaSchema{Type: "integer", Minimum: num(1), Maximum: num(registry.MaxPageSize), Description: "Defaults to " + strconv.Itoa(registry.DefaultPageSize) + "."}},
		"pageToken": {Name: "page_token", In: "query", Schema: &oaSchema{Type: "string"},
			Description: "The next_page_token of the previous page of the same listing; leave out for the first page."},
		"ifMatch": {Name: "If-Match", In: "header", Schema: &oaSchema{Type: "string"},
			Description: "The ETag that was read (or *): the change applies only to that version. Required to change or delete an existing resource (else 428)."},
		"ifNoneMatch": {Name: "If-None-Match", In: "header", Schema: &oaSchema{Type: "string"},
			Description: "On PUT, * creates only (409 if the resource exists). On GET, an ETag answers 304 when it is current."},
	}
}

// schemas holds the spec schema of every kind, its resource and list
// envelopes, and the other bodies.
func schemas() map[string]*oaSchema {
	tenant := nameSchema("The tenant the resource belongs to.")
	name := nameSchema("The resource's name, unique within its tenant and kind.")
	scopes := array(&oaSchema{Type: "string", Pattern: `^[\x21\x23-\x5B\x5D-\x7E]+$`}, "OAuth2 scopes (RFC 6749 §3.3 scope tokens).")
	s := map[string]*oaSchema{
		"Tenant": object("An isolated set of APIs, applications and plans.", map[string]*oaSchema{
			"name":         nameSchema("The tenant's name."),
			"display_name": {Type: "string", MaxLength: num(200), Description: "Free text for consoles."},
			"hosts":        {Type: "array", Items: str("A request host (api.acme.example, or *.acme.example for one label)."), Description: "Request hosts resolved to this tenant; a host belongs to one tenant."},
			"path_prefix":  str("Mounts the tenant's APIs under this path, e.g. /t/acme; removed before the request goes upstream."),
		}, "name"),
		"API": object("An API published through the gateway.", map[string]*oaSchema{
			"tenant": tenant, "name": name,
			"spec": {Type: "object", Description: "The API's configuration block, as in the configuration file's apis[] entries."},
		}, "tenant", "name"),
		"CertificateRef": object("Client certificates of an application: a SHA-256 fingerprint, or an issuer DN with at least one of subject_dn, cn, dns and uri.", map[string]*oaSchema{
			"fingerprint": str("Hex SHA-256 of the certificate's DER; colons and case are ignored. Excludes the other fields."),
			"issuer":      str("The issuer DN, e.g. CN=Partners CA,O=Example."),
			"subject_dn":  str("The exact subject DN."),
			"cn":          str("The subject common name."),
			"dns":         str("A DNS subject alternative name."),
			"uri":         str("A URI subject alternative name, e.g. a SPIFFE ID."),
		}),
		"OAuth2Client": object("An application's registration with the built-in OAuth2 authorization server.", map[string]*oaSchema{
			"client_id": str("The client_id, unique within the tenant: 1 to 255 printable ASCII characters without spaces."),
			"auth_methods": array(&oaSchema{Type: "string", Enum: []string{
				"client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth",
			}}, "Token endpoint authentication methods."),
			"secret_hashes": array(hashSchema(""), "Hashes of the client's secrets, for client_secret_*."),
			"jwks":          {Type: "object", Description: "The client's public JWK Set, for private_key_jwt."},
			"scopes":        scopes,
		}, "client_id", "auth_methods"),
		"Application": object("A consumer of APIs and the credentials it calls with.", map[string]*oaSchema{
			"tenant": tenant, "name": name,
			"certificates":   array(ref("CertificateRef"), "Client certificates of the application."),
			"api_key_hashes": array(hashSchema(""), "Hashes of the application's API keys; keys themselves are never stored."),
			"oauth2":         ref("OAuth2Client"),
		}, "tenant", "name"),
		"RateLimit": object("rate requests per period, with bursts of up to burst.", map[string]*oaSchema{
			"rate":   integer("Requests per period.", 1),
			"period": str("A Go duration such as 1s or 1m, greater than zero."),
			"burst":  integer("Requests that may arrive at once; 0 means rate.", 0),
		}, "rate", "period"),
		"Quota": object("limit requests per calendar window (UTC).", map[string]*oaSchema{
			"limit":  integer("Requests per window.", 1),
			"window": {Type: "string", Enum: []string{string(registry.QuotaDay), string(registry.QuotaMonth)}},
		}, "limit", "window"),
		"Plan": object("What a subscription grants: throughput, volume and scopes.", map[string]*oaSchema{
			"tenant": tenant, "name": name,
			"rate_limit": ref("RateLimit"),
			"quota":      ref("Quota"),
			"scopes":     scopes,
		}, "tenant", "name"),
		"Subscription": object("Lets an application call an API under a plan; one per application and API.", map[string]*oaSchema{
			"tenant": tenant, "name": name,
			"application": nameSchema("An application of the same tenant."),
			"api":         nameSchema("An API of the same tenant."),
			"plan":        nameSchema("A plan of the same tenant."),
			"state":       {Type: "string", Enum: []string{string(registry.StateActive), string(registry.StateSuspended)}},
		}, "tenant", "name", "application", "api", "plan", "state"),
		"Certificate": object("A PEM bundle of X.509 certificates for trust sets; private keys are refused.", map[string]*oaSchema{
			"tenant": tenant, "name": name,
			"pem": str("One or more -----BEGIN CERTIFICATE----- blocks and nothing else."),
		}, "tenant", "name", "pem"),
		"TrustSet": object("A named set of uploaded certificates to verify client or upstream certificates against.", map[string]*oaSchema{
			"tenant": tenant, "name": name,
			"certificates": {Type: "array", MinItems: num(1), Items: nameSchema("A certificate of the same tenant."), Description: "The certificates in the set."},
		}, "tenant", "name", "certificates"),
		"AuditEntry": object("One change to the registry.", map[string]*oaSchema{
			"id":          integer("Orders the entries.", 1),
			"who":         str("The admin who made the change, or file for the configuration file."),
			"action":      str("create, update or delete."),
			"kind":        str("The kind of the resource."),
			"tenant":      str("The resource's tenant; absent for tenants."),
			"name":        str("The resource's name."),
			"before_hash": str("sha256 of the resource before the change; absent when it did not exist."),
			"after_hash":  str("sha256 of the resource after the change; absent when it was deleted."),
			"at":          {Type: "string", Format: "date-time"},
		}, "id", "who", "action", "kind", "name", "at"),
		"AuditList": list("AuditEntry", "A page of audit entries, newest first."),
		"ReloadResult": object("A reload that took effect.", map[string]*oaSchema{
			"result": {Type: "string", Enum: []string{"reloaded"}},
			"apis":   integer("APIs the new configuration serves.", 0),
		}, "result", "apis"),
		"Whoami": object("The authenticated principal.", map[string]*oaSchema{
			"name":             str("The principal's name, as audit entries record it."),
			"role":             {Type: "string", Enum: []string{string(RoleAdmin), string(RoleTenantAdmin)}},
			"tenant":           str("The tenant of a tenant-admin."),
			"authenticated_by": {Type: "string", Enum: []string{viaClientCertificate, viaBearerToken}},
		}, "name", "role", "authenticated_by"),
		"Problem": object("An RFC 9457 problem document.", map[string]*oaSchema{
			"type":       {Type: "string", Format: "uri", Description: problem.TypeBase + " followed by the code."},
			"title":      str("The code's title."),
			"status":     integer("The HTTP status.", 100),
			"code":       str("The stable problem code (docs/problem-codes.md)."),
			"detail":     str("What was wrong; for invalid resources, field: message; field: message."),
			"request_id": str("Quote it to the operator; the log has the full cause."),
		}, "type", "title", "status", "code"),
		"OpenAPIDocument": {Type: "object", Description: "An OpenAPI 3.1 document."},
	}
	for _, k := range kinds() {
		envelope := object("A stored "+k.noun+" and its metadata.", map[string]*oaSchema{
			"kind":       {Type: "string", Const: string(k.kind)},
			"tenant":     str("The resource's tenant; absent for tenants."),
			"name":       str("The resource's name."),
			"version":    integer("Grows on every change; the ETag is this number in quotes.", 1),
			"managed_by": {Type: "string", Enum: []string{string(registry.ManagedByFile), string(registry.ManagedByAPI)}, Description: "file: change it in the configuration file; api: change it here."},
			"created_at": {Type: "string", Format: "date-time"},
			"updated_at": {Type: "string", Format: "date-time"},
			"spec":       ref(k.schema),
		}, "kind", "name", "version", "managed_by", "created_at", "updated_at", "spec")
		s[k.schema+"Resource"] = envelope
		s[k.schema+"List"] = list(k.schema+"Resource", "A page of "+k.noun+"s.")
	}
	return s
}

func list(item, description string) *oaSchema {
	return object(description, map[string]*oaSchema{
		"items":           array(ref(item), ""),
		"next_page_token": str("The page_token of the next page; empty after the last page."),
	}, "items", "next_page_token")
}

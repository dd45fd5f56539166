package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Kind names a type of resource. Its values are the ones stored in the
// database and used in URLs and files.
type Kind string

// The kinds of resource the registry stores.
const (
	KindTenant       Kind = "tenant"
	KindAPI          Kind = "api"
	KindApplication  Kind = "application"
	KindPlan         Kind = "plan"
	KindSubscription Kind = "subscription"
	KindCertificate  Kind = "certificate"
	KindTrustSet     Kind = "trust_set"
)

// Kinds returns every kind, in the order a snapshot should read them:
// a kind comes after the kinds it may refer to.
func Kinds() []Kind {
	return []Kind{KindTenant, KindCertificate, KindTrustSet, KindAPI, KindPlan, KindApplication, KindSubscription}
}

// Valid reports whether k is one of the kinds returned by Kinds.
func (k Kind) Valid() bool {
	for _, known := range Kinds() {
		if k == known {
			return true
		}
	}
	return false
}

// checkKind rejects an unknown kind with the list of known ones.
func checkKind(k Kind) error {
	if k.Valid() {
		return nil
	}
	names := make([]string, 0, len(Kinds()))
	for _, known := range Kinds() {
		names = append(names, string(known))
	}
	return invalidf("unknown kind %q (known: %s)", k, strings.Join(names, ", "))
}

// Key identifies a resource. Tenant is empty for tenants themselves, which
// belong to no tenant; every other kind lives inside exactly one tenant.
type Key struct {
	Kind   Kind   `json:"kind"`
	Tenant string `json:"tenant,omitempty"`
	Name   string `json:"name"`
}

// String names the resource the way error messages do, e.g.
// `plan "gold" in tenant "acme"`.
func (k Key) String() string {
	if k.Tenant == "" {
		return fmt.Sprintf("%s %q", k.Kind, k.Name)
	}
	return fmt.Sprintf("%s %q in tenant %q", k.Kind, k.Name, k.Tenant)
}

// ManagedBy says which source of truth owns a resource.
type ManagedBy string

// The owners of a resource.
const (
	// ManagedByFile marks resources declared in the gateway's YAML file.
	// The admin API refuses to change them (ErrFileManaged), and ApplyFile
	// deletes them once the file no longer declares them.
	ManagedByFile ManagedBy = "file"
	// ManagedByAPI marks resources created through the admin API.
	ManagedByAPI ManagedBy = "api"
)

func checkManagedBy(m ManagedBy) error {
	if m == ManagedByFile || m == ManagedByAPI {
		return nil
	}
	return invalidf("managed_by %q is not %q or %q", m, ManagedByFile, ManagedByAPI)
}

// The special ifVersion arguments of Store.Put and Store.Delete. Any other
// value must be a version the caller read (an If-Match ETag).
const (
	// AnyVersion writes or deletes whatever version is stored.
	AnyVersion int64 = -1
	// CreateOnly makes Put fail with ErrAlreadyExists when the resource
	// exists.
	CreateOnly int64 = 0
)

// AllTenants, given as the tenant to List or ListAudit, lists every
// tenant's resources of a kind (tenants themselves are listed with "").
const AllTenants = "*"

// Object is a resource's content: one of Tenant, API, Application, Plan,
// Subscription, Certificate or TrustSet. The set is closed.
type Object interface {
	// Key identifies the object from its own fields.
	Key() Key
	// Validate checks the object on its own, without looking at other
	// resources, and returns a *ValidationError listing every problem, or
	// nil. It never modifies the object.
	Validate() error
	// links lists what the object refers to and what it claims
	// exclusively; the store enforces both.
	links() links
}

// Resource is a stored object with the metadata the store keeps for it.
type Resource struct {
	// Object is the content, as a value of its kind's type (Tenant, API,
	// …), never a pointer.
	Object Object
	// Version grows on every change of this resource and is never reused,
	// even after the resource is deleted and created again. It is the ETag.
	Version int64
	// ManagedBy says who owns the resource.
	ManagedBy ManagedBy
	// CreatedAt and UpdatedAt are in UTC.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Key identifies the resource.
func (r Resource) Key() Key { return r.Object.Key() }

// ETag returns the version as a strong HTTP entity tag, e.g. `"42"`.
func (r Resource) ETag() string { return fmt.Sprintf("%q", fmt.Sprint(r.Version)) }

// resourceJSON is the wire form of a Resource.
type resourceJSON struct {
	Kind      Kind            `json:"kind"`
	Tenant    string          `json:"tenant,omitempty"`
	Name      string          `json:"name"`
	Version   int64           `json:"version"`
	ManagedBy ManagedBy       `json:"managed_by"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	Spec      json.RawMessage `json:"spec"`
}

// MarshalJSON writes the metadata beside the object, which goes under
// "spec".
func (r Resource) MarshalJSON() ([]byte, error) {
	if r.Object == nil {
		return nil, invalidf("resource has no object")
	}
	spec, err := json.Marshal(r.Object)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", r.Key(), err)
	}
	k := r.Key()
	return json.Marshal(resourceJSON{
		Kind: k.Kind, Tenant: k.Tenant, Name: k.Name, Version: r.Version, ManagedBy: r.ManagedBy,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Spec: spec,
	})
}

// UnmarshalJSON reads what MarshalJSON writes, decoding "spec" strictly
// by its kind (see DecodeObject).
func (r *Resource) UnmarshalJSON(data []byte) error {
	var w resourceJSON
	if err := json.Unmarshal(data, &w); err != nil {
		return invalidf("decoding resource: %w", err)
	}
	obj, err := DecodeObject(w.Kind, w.Spec)
	if err != nil {
		return err
	}
	*r = Resource{Object: obj, Version: w.Version, ManagedBy: w.ManagedBy, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
	return nil
}

// Hash returns "sha256:" and the hex SHA-256 of the object's canonical
// JSON, the form audit entries record as before and after hashes.
func Hash(obj Object) (string, error) {
	body, err := json.Marshal(obj)
	if err != nil {
		return "", fmt.Errorf("encoding %s: %w", obj.Key(), err)
	}
	return hashBody(body), nil
}

func hashBody(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Page asks for one page of a listing.
type Page struct {
	// Size is the most items to return: 1 to MaxPageSize, or 0 for
	// DefaultPageSize.
	Size int
	// Token is the nextToken of the previous page, or "" for the first.
	Token string
}

// Page sizes.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// AuditEntry records one change to the registry.
type AuditEntry struct {
	// ID orders entries; the store assigns it and ignores a caller's.
	ID int64 `json:"id"`
	// Who made the change: an admin identity, or "file" for ApplyFile.
	Who string `json:"who"`
	// Action is "create", "update" or "delete" for resource changes; the
	// admin API may record other actions.
	Action string `json:"action"`
	Kind   Kind   `json:"kind"`
	Tenant string `json:"tenant,omitempty"`
	Name   string `json:"name"`
	// BeforeHash and AfterHash are Hash values of the object before and
	// after the change, empty when it did not exist.
	BeforeHash string `json:"before_hash,omitempty"`
	AfterHash  string `json:"after_hash,omitempty"`
	// At is when the change happened, in UTC. The store sets it when zero.
	At time.Time `json:"at"`
}

// The actions of audit entries the store writes itself.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionDelete = "delete"
)

type actorKey struct{}

// WithActor returns a context whose changes are audited as made by who,
// e.g. the subject of an admin client certificate.
func WithActor(ctx context.Context, who string) context.Context {
	return context.WithValue(ctx, actorKey{}, who)
}

// actor returns who WithActor named, or fallback.
func actor(ctx context.Context, fallback string) string {
	if who, ok := ctx.Value(actorKey{}).(string); ok && who != "" {
		return who
	}
	return fallback
}

// Store holds the registry's resources. Implementations are safe for
// concurrent use, and every write is one transaction: it applies entirely
// or not at all. Errors wrap ErrNotFound, ErrAlreadyExists,
// ErrVersionConflict, ErrFileManaged, ErrInvalid or ErrStoreUnavailable.
type Store interface {
	// Get returns one resource, or ErrNotFound. Tenants are read with an
	// empty tenant.
	Get(ctx context.Context, kind Kind, tenant, name string) (Resource, error)
	// List returns one page of a kind's resources in a tenant (or in
	// AllTenants), ordered by tenant then name, and the token of the next
	// page, "" after the last. Pages are keyset-based: rows written between
	// two calls neither shift nor repeat the rows already returned.
	List(ctx context.Context, kind Kind, tenant string, page Page) ([]Resource, string, error)
	// Put creates or replaces obj. ifVersion is CreateOnly, AnyVersion or
	// the version the caller read; a mismatch is ErrVersionConflict (or
	// ErrAlreadyExists, or ErrNotFound when the resource is gone). With
	// managedBy ManagedByAPI it refuses file-managed resources
	// (ErrFileManaged). An identical Put changes nothing and returns the
	// stored resource with its version unchanged.
	Put(ctx context.Context, obj Object, ifVersion int64, managedBy ManagedBy) (Resource, error)
	// Delete removes a resource on behalf of the admin API: it refuses
	// file-managed resources (ErrFileManaged, only ApplyFile removes them)
	// and resources still referred to (ErrInvalid naming the referrer).
	// ifVersion is AnyVersion or the version the caller read.
	Delete(ctx context.Context, kind Kind, tenant, name string, ifVersion int64) error
	// ApplyFile makes the file-managed resources exactly objs in one
	// transaction: it creates or updates each as ManagedByFile (taking over
	// an API-managed resource of the same key) and deletes file-managed
	// resources that objs no longer contain. It returns how many resources
	// it created, updated or deleted; applying the same objects again
	// returns 0 and does not move the revision.
	ApplyFile(ctx context.Context, objs []Object) (int, error)
	// ReadAll returns the revision and every resource as of one instant, in
	// the order of Kinds, for building a runtime snapshot.
	ReadAll(ctx context.Context) (int64, []Resource, error)
	// Revision returns a counter that moves on every change; a gateway
	// rebuilds its snapshot when it differs from the one it built.
	Revision(ctx context.Context) (int64, error)
	// Audit records an entry the admin API writes itself (changes made
	// through Put, Delete and ApplyFile are audited by the store).
	Audit(ctx context.Context, entry AuditEntry) error
	// ListAudit returns entries about a tenant's resources (AllTenants for
	// every entry), newest first, one page at a time.
	ListAudit(ctx context.Context, tenant string, page Page) ([]AuditEntry, string, error)
	// Close releases the database. The store is unusable afterwards.
	Close() error
}

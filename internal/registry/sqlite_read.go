package registry

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// checkScope rejects a tenant argument that cannot hold kind: tenants live
// outside any tenant, everything else inside one. allowAll admits
// AllTenants.
func checkScope(kind Kind, tenant string, allowAll bool) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	switch {
	case kind == KindTenant && tenant != "" && !(allowAll && tenant == AllTenants):
		return invalidf("tenants belong to no tenant: pass an empty tenant, not %q", tenant)
	case kind != KindTenant && tenant == "":
		return invalidf("a %s belongs to a tenant: the tenant is required", kind)
	}
	return nil
}

// Get returns one resource, or an error wrapping ErrNotFound.
func (s *SQLiteStore) Get(ctx context.Context, kind Kind, tenant, name string) (Resource, error) {
	if err := checkScope(kind, tenant, false); err != nil {
		return Resource{}, err
	}
	k := Key{Kind: kind, Tenant: tenant, Name: name}
	r, found, err := getRow(ctx, s.db, k)
	if err != nil {
		return Resource{}, fmt.Errorf("reading %s: %w", k, s.explain(err))
	}
	if !found {
		return Resource{}, fmt.Errorf("%s: %w", k, ErrNotFound)
	}
	return r.resource()
}

// pageToken is the decoded form of a listing's nextToken. Kind and Filter
// bind it to the listing it came from.
type pageToken struct {
	Kind   Kind   `json:"k,omitempty"`
	Filter string `json:"f"`
	Tenant string `json:"t,omitempty"`
	Name   string `json:"n,omitempty"`
	ID     int64  `json:"i,omitempty"`
}

func (t pageToken) encode() string {
	b, _ := json.Marshal(t) // a struct of strings and ints always encodes
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePageToken checks the page size and decodes the token, which must
// come from a listing of the same kind and filter.
func decodePageToken(page Page, kind Kind, filter string) (size int, t pageToken, err error) {
	size = page.Size
	switch {
	case size == 0:
		size = DefaultPageSize
	case size < 0 || size > MaxPageSize:
		return 0, t, invalidf("page size %d is not between 1 and %d", page.Size, MaxPageSize)
	}
	if page.Token == "" {
		return size, pageToken{Kind: kind, Filter: filter}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(page.Token)
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil {
		return 0, t, invalidf("malformed page token: use the next token of the previous page")
	}
	if t.Kind != kind || t.Filter != filter {
		return 0, t, invalidf("the page token belongs to another listing")
	}
	return size, t, nil
}

// List returns one page of a kind's resources in tenant ("" for tenants,
// AllTenants for every tenant), in (tenant, name) order, and the token of
// the next page ("" after the last).
func (s *SQLiteStore) List(ctx context.Context, kind Kind, tenant string, page Page) ([]Resource, string, error) {
	if err := checkScope(kind, tenant, true); err != nil {
		return nil, "", err
	}
	if kind == KindTenant {
		tenant = ""
	}
	size, tok, err := decodePageToken(page, kind, tenant)
	if err != nil {
		return nil, "", err
	}
	var rows *sql.Rows
	// One extra row tells whether another page follows. Row values keep
	// the query on the primary key index in both SQLite and PostgreSQL.
	if tenant == AllTenants {
		rows, err = s.db.QueryContext(ctx, `SELECT `+selectColumns+` FROM resources
			WHERE kind = ? AND (tenant, name) > (?, ?) ORDER BY tenant, name LIMIT ?`,
			kind, tok.Tenant, tok.Name, size+1)
	} else {
		rows, err = s.db.QueryContext(ctx, `SELECT `+selectColumns+` FROM resources
			WHERE kind = ? AND tenant = ? AND name > ? ORDER BY name LIMIT ?`,
			kind, tenant, tok.Name, size+1)
	}
	if err != nil {
		return nil, "", fmt.Errorf("listing %s resources: %w", kind, s.explain(err))
	}
	defer rows.Close()
	var out []Resource
	next := ""
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, "", fmt.Errorf("listing %s resources: %w", kind, s.explain(err))
		}
		if len(out) == size {
			last := out[len(out)-1].Key()
			next = pageToken{Kind: kind, Filter: tenant, Tenant: last.Tenant, Name: last.Name}.encode()
			break
		}
		res, err := r.resource()
		if err != nil {
			return nil, "", err
		}
		out = append(out, res)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("listing %s resources: %w", kind, s.explain(err))
	}
	return out, next, nil
}

// ReadAll returns the revision and every resource from one read
// transaction, ordered as Kinds lists the kinds, then by tenant and name.
func (s *SQLiteStore) ReadAll(ctx context.Context) (int64, []Resource, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, nil, fmt.Errorf("reading the registry: %w", s.explain(err))
	}
	defer func() { _ = tx.Rollback() }()
	var rev int64
	if err := tx.QueryRowContext(ctx, `SELECT value FROM revision WHERE id = 1`).Scan(&rev); err != nil {
		return 0, nil, fmt.Errorf("reading the registry revision: %w", s.explain(err))
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+selectColumns+` FROM resources ORDER BY kind, tenant, name`)
	if err != nil {
		return 0, nil, fmt.Errorf("reading the registry: %w", s.explain(err))
	}
	defer rows.Close()
	var out []Resource
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return 0, nil, fmt.Errorf("reading the registry: %w", s.explain(err))
		}
		res, err := r.resource()
		if err != nil {
			return 0, nil, err
		}
		out = append(out, res)
	}
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("reading the registry: %w", s.explain(err))
	}
	order := map[Kind]int{}
	for i, k := range Kinds() {
		order[k] = i
	}
	// The query sorted by tenant and name already; a stable sort by kind
	// keeps that within each kind.
	slices.SortStableFunc(out, func(a, b Resource) int { return order[a.Key().Kind] - order[b.Key().Kind] })
	return rev, out, nil
}

// Revision returns the global change counter.
func (s *SQLiteStore) Revision(ctx context.Context) (int64, error) {
	var rev int64
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM revision WHERE id = 1`).Scan(&rev); err != nil {
		return 0, fmt.Errorf("reading the registry revision: %w", s.explain(err))
	}
	return rev, nil
}

// ListAudit returns audit entries about tenant's resources (AllTenants for
// all, "" for entries about tenants themselves), newest first.
func (s *SQLiteStore) ListAudit(ctx context.Context, tenant string, page Page) ([]AuditEntry, string, error) {
	size, tok, err := decodePageToken(page, "", tenant)
	if err != nil {
		return nil, "", err
	}
	before := int64(math.MaxInt64)
	if tok.ID > 0 {
		before = tok.ID
	}
	var rows *sql.Rows
	const cols = `id, at, who, action, kind, tenant, name, before_hash, after_hash`
	if tenant == AllTenants {
		rows, err = s.db.QueryContext(ctx, `SELECT `+cols+` FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?`, before, size+1)
	} else {
		rows, err = s.db.QueryContext(ctx, `SELECT `+cols+` FROM audit WHERE tenant = ? AND id < ? ORDER BY id DESC LIMIT ?`, tenant, before, size+1)
	}
	if err != nil {
		return nil, "", fmt.Errorf("listing audit entries: %w", s.explain(err))
	}
	defer rows.Close()
	var out []AuditEntry
	next := ""
	for rows.Next() {
		if len(out) == size {
			next = pageToken{Filter: tenant, ID: out[len(out)-1].ID}.encode()
			break
		}
		var e AuditEntry
		var at string
		if err := rows.Scan(&e.ID, &at, &e.Who, &e.Action, &e.Kind, &e.Tenant, &e.Name, &e.BeforeHash, &e.AfterHash); err != nil {
			return nil, "", fmt.Errorf("listing audit entries: %w", s.explain(err))
		}
		if e.At, err = parseTime(at); err != nil {
			return nil, "", fmt.Errorf("reading audit entry %d: at: %w", e.ID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("listing audit entries: %w", s.explain(err))
	}
	return out, next, nil
}

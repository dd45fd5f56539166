package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestCRUDEveryKind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	certPEM := selfSignedPEM(t, "Partners CA")
	tests := []struct {
		name    string
		deps    func(t *testing.T) []Object
		create  Object
		update  Object
		tenant  string // "" for tenants
		refuses string // a dependency whose deletion the object blocks, "" for none
	}{
		{
			name:   "tenant",
			create: acme,
			update: Tenant{Name: "acme", DisplayName: "Acme Corporation"},
		},
		{
			name:    "api",
			deps:    func(*testing.T) []Object { return []Object{acme} },
			create:  orders,
			update:  API{Tenant: "acme", Name: "orders", Spec: []byte(`{"path":"/v2/orders"}`)},
			tenant:  "acme",
			refuses: "tenant",
		},
		{
			name:   "application",
			deps:   func(*testing.T) []Object { return []Object{acme} },
			create: shop,
			update: Application{Tenant: "acme", Name: "shop", Certificates: []CertificateRef{{Fingerprint: "AB:" + keyHash("x")[9:]}}},
			tenant: "acme",
		},
		{
			name:   "plan",
			deps:   func(*testing.T) []Object { return []Object{acme} },
			create: gold,
			update: Plan{Tenant: "acme", Name: "gold", RateLimit: &RateLimit{Rate: 5, Period: "1m"}},
			tenant: "acme",
		},
		{
			name:    "subscription",
			deps:    func(*testing.T) []Object { return []Object{acme, orders, shop, gold} },
			create:  shopOrders,
			update:  Subscription{Tenant: "acme", Name: "shop-orders", Application: "shop", API: "orders", Plan: "gold", State: StateSuspended},
			tenant:  "acme",
			refuses: "plan",
		},
		{
			name:   "certificate",
			deps:   func(*testing.T) []Object { return []Object{acme} },
			create: Certificate{Tenant: "acme", Name: "partners-ca", PEM: certPEM},
			update: Certificate{Tenant: "acme", Name: "partners-ca", PEM: certPEM + selfSignedPEM(t, "Other CA")},
			tenant: "acme",
		},
		{
			name: "trust set",
			deps: func(*testing.T) []Object {
				return []Object{acme, Certificate{Tenant: "acme", Name: "partners-ca", PEM: certPEM}, Certificate{Tenant: "acme", Name: "old-ca", PEM: certPEM}}
			},
			create:  TrustSet{Tenant: "acme", Name: "partners", CertificateNames: []string{"partners-ca"}},
			update:  TrustSet{Tenant: "acme", Name: "partners", CertificateNames: []string{"partners-ca", "old-ca"}},
			tenant:  "acme",
			refuses: "certificate",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := openTest(t)
			if tc.deps != nil {
				for _, d := range tc.deps(t) {
					put(t, s, d)
				}
			}
			k := tc.create.Key()

			created, err := s.Put(ctx, tc.create, CreateOnly, ManagedByAPI)
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			if !reflect.DeepEqual(created.Object, tc.create) || created.ManagedBy != ManagedByAPI || created.Version < 1 {
				t.Fatalf("create returned %+v", created)
			}
			got, err := s.Get(ctx, k.Kind, tc.tenant, k.Name)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if !reflect.DeepEqual(got, created) {
				t.Fatalf("Get = %+v, want %+v", got, created)
			}

			updated, err := s.Put(ctx, tc.update, created.Version, ManagedByAPI)
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			if updated.Version <= created.Version || !updated.CreatedAt.Equal(created.CreatedAt) || updated.UpdatedAt.Before(created.UpdatedAt) {
				t.Errorf("update metadata: created %+v, updated %+v", created, updated)
			}
			if !reflect.DeepEqual(updated.Object, tc.update) {
				t.Errorf("update stored %+v, want %+v", updated.Object, tc.update)
			}

			list, next, err := s.List(ctx, k.Kind, tc.tenant, Page{})
			if err != nil || next != "" || len(list) != 1 || !reflect.DeepEqual(list[0], updated) {
				t.Fatalf("List = %+v, %q, %v; want just the updated resource", list, next, err)
			}

			if tc.refuses != "" {
				var dep Key
				for _, l := range tc.create.links().refs {
					if string(l.to.Kind) == tc.refuses {
						dep = l.to
					}
				}
				err := s.Delete(ctx, dep.Kind, dep.Tenant, dep.Name, AnyVersion)
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("deleting the referenced %s: %v, want ErrInvalid", dep, err)
				}
				mustContain(t, err, fmt.Sprintf("%s %q", k.Kind, k.Name))
			}

			if err := s.Delete(ctx, k.Kind, tc.tenant, k.Name, updated.Version); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if _, err := s.Get(ctx, k.Kind, tc.tenant, k.Name); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
			}
			if err := s.Delete(ctx, k.Kind, tc.tenant, k.Name, AnyVersion); !errors.Is(err, ErrNotFound) {
				t.Fatalf("second Delete: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestVersionConflicts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	seed(t, s)
	cur, err := s.Get(ctx, KindPlan, "acme", "gold")
	if err != nil {
		t.Fatal(err)
	}
	silver := gold
	silver.RateLimit = &RateLimit{Rate: 1, Period: "1s"}
	tests := []struct {
		name      string
		do        func() error
		want      error
		wantInMsg string
	}{
		{"create-only on an existing resource", func() error {
			_, err := s.Put(ctx, gold, CreateOnly, ManagedByAPI)
			return err
		}, ErrAlreadyExists, `plan "gold" in tenant "acme"`},
		{"stale If-Match on Put", func() error {
			_, err := s.Put(ctx, silver, cur.Version-1, ManagedByAPI)
			return err
		}, ErrVersionConflict, fmt.Sprintf("at version %d, not %d", cur.Version, cur.Version-1)},
		{"If-Match on a missing resource", func() error {
			p := gold
			p.Name = "platinum"
			_, err := s.Put(ctx, p, 3, ManagedByAPI)
			return err
		}, ErrNotFound, `plan "platinum"`},
		{"stale If-Match on Delete", func() error {
			return s.Delete(ctx, KindPlan, "acme", "gold", cur.Version+100)
		}, ErrVersionConflict, `plan "gold"`},
		{"ifVersion below AnyVersion", func() error {
			_, err := s.Put(ctx, gold, -2, ManagedByAPI)
			return err
		}, ErrInvalid, "ifVersion -2"},
		{"Delete with CreateOnly", func() error {
			return s.Delete(ctx, KindPlan, "acme", "gold", CreateOnly)
		}, ErrInvalid, "ifVersion 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			mustContain(t, err, tc.wantInMsg)
		})
	}
	after, err := s.Get(ctx, KindPlan, "acme", "gold")
	if err != nil || after.Version != cur.Version {
		t.Fatalf("failed writes changed the plan: %+v, %v", after, err)
	}

	// A version is never reused, even by a new resource with the same key,
	// so a stale ETag can never match a later incarnation.
	if err := s.Delete(ctx, KindPlan, "acme", "gold", cur.Version); err != nil {
		t.Fatal(err)
	}
	again := put(t, s, gold)
	if again.Version <= cur.Version {
		t.Fatalf("recreated plan has version %d, not above %d", again.Version, cur.Version)
	}
	if _, err := s.Put(ctx, silver, cur.Version, ManagedByAPI); !errors.Is(err, ErrVersionConflict) {
		t.Fatalf("old ETag after recreate: %v, want ErrVersionConflict", err)
	}
}

func TestIdenticalPutChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	seed(t, s)
	before, _ := s.Get(ctx, KindPlan, "acme", "gold")
	rev, _ := s.Revision(ctx)
	again, err := s.Put(ctx, &gold, before.Version, ManagedByAPI) // a pointer is accepted too
	if err != nil {
		t.Fatal(err)
	}
	rev2, _ := s.Revision(ctx)
	if !reflect.DeepEqual(again, before) || rev2 != rev {
		t.Fatalf("identical Put: %+v (revision %d → %d), want %+v unchanged", again, rev, rev2, before)
	}
}

func TestFileManagedResourcesRefuseTheAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	if _, err := s.ApplyFile(ctx, []Object{acme, gold}); err != nil {
		t.Fatal(err)
	}
	cur, _ := s.Get(ctx, KindPlan, "acme", "gold")
	edited := gold
	edited.Scopes = nil

	_, err := s.Put(ctx, edited, AnyVersion, ManagedByAPI)
	if !errors.Is(err, ErrFileManaged) {
		t.Fatalf("Put by the API: %v, want ErrFileManaged", err)
	}
	mustContain(t, err, `plan "gold" in tenant "acme"`, "edit the file")

	err = s.Delete(ctx, KindPlan, "acme", "gold", AnyVersion)
	if !errors.Is(err, ErrFileManaged) {
		t.Fatalf("Delete by the API: %v, want ErrFileManaged", err)
	}

	// The file itself may still change it.
	r, err := s.Put(ctx, edited, cur.Version, ManagedByFile)
	if err != nil || r.ManagedBy != ManagedByFile || r.Version <= cur.Version {
		t.Fatalf("Put by the file: %+v, %v", r, err)
	}
	if _, err := s.Put(ctx, gold, AnyVersion, "yaml"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown managedBy: %v, want ErrInvalid", err)
	}
}

func TestReferenceChecks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	certPEM := selfSignedPEM(t, "CA")
	tests := []struct {
		name       string
		obj        Object
		wantFields []string
		wantInMsg  string
	}{
		{"subscription to an unknown plan", Subscription{Tenant: "acme", Name: "s", Application: "shop", API: "orders", Plan: "platinum", State: StateActive},
			[]string{"plan"}, `unknown plan "platinum" in tenant "acme"`},
		{"subscription to everything unknown", Subscription{Tenant: "acme", Name: "s", Application: "nobody", API: "nothing", Plan: "none", State: StateActive},
			[]string{"application", "api", "plan"}, `unknown application "nobody"`},
		{"subscription across tenants", Subscription{Tenant: "globex", Name: "s", Application: "shop", API: "orders", Plan: "gold", State: StateActive},
			[]string{"application", "api", "plan"}, `unknown api "orders" in tenant "globex"`},
		{"resource in an unknown tenant", Plan{Tenant: "initech", Name: "p"},
			[]string{"tenant"}, `unknown tenant "initech": create the tenant first`},
		{"trust set with an unknown certificate", TrustSet{Tenant: "acme", Name: "ts", CertificateNames: []string{"ca", "missing-ca"}},
			[]string{"certificates[1]"}, `unknown certificate "missing-ca"`},
	}
	s := openTest(t)
	seed(t, s)
	put(t, s, Tenant{Name: "globex"})
	put(t, s, Certificate{Tenant: "acme", Name: "ca", PEM: certPEM})
	rev, _ := s.Revision(ctx)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Put(ctx, tc.obj, AnyVersion, ManagedByAPI)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
			if got := fieldsOf(err); !reflect.DeepEqual(got, tc.wantFields) {
				t.Errorf("fields = %q, want %q", got, tc.wantFields)
			}
			mustContain(t, err, tc.wantInMsg)
			if _, err := s.Get(ctx, tc.obj.Key().Kind, tc.obj.Key().Tenant, tc.obj.Key().Name); !errors.Is(err, ErrNotFound) {
				t.Errorf("the rejected object was stored: %v", err)
			}
		})
	}
	if rev2, _ := s.Revision(ctx); rev2 != rev {
		t.Errorf("rejected writes moved the revision from %d to %d", rev, rev2)
	}

	t.Run("deleting a referenced resource names the referrer", func(t *testing.T) {
		put(t, s, shopOrders)
		err := s.Delete(ctx, KindPlan, "acme", "gold", AnyVersion)
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("got %v, want ErrInvalid", err)
		}
		mustContain(t, err, `cannot delete plan "gold" in tenant "acme"`, `subscription "shop-orders" in tenant "acme" refers to it in field plan`)
		err = s.Delete(ctx, KindTenant, "", "acme", AnyVersion)
		mustContain(t, err, `cannot delete tenant "acme"`, "more references")
	})
}

func TestCredentialsBelongToOneApplication(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	seed(t, s)
	fp := keyHash("cert")[len("sha256:"):]
	put(t, s, Application{Tenant: "acme", Name: "kiosk", Certificates: []CertificateRef{{Fingerprint: fp}}})
	put(t, s, Tenant{Name: "globex"})
	tests := []struct {
		name       string
		obj        Object
		wantFields []string
		wantInMsg  string
	}{
		{"same API key hash", Application{Tenant: "acme", Name: "copy", APIKeyHashes: []string{keyHash("other"), keyHash("shop-key")}},
			[]string{"api_key_hashes[1]"}, `already registered to application "shop"`},
		{"same fingerprint, other spelling", Application{Tenant: "acme", Name: "copy", Certificates: []CertificateRef{{Fingerprint: colons(fp)}}},
			[]string{"certificates[0].fingerprint"}, `already registered to application "kiosk"`},
		{"same client id", Application{Tenant: "acme", Name: "copy", OAuth2: &OAuth2Client{ClientID: "shop-client", AuthMethods: []string{"client_secret_post"}, SecretHashes: []string{keyHash("x")}}},
			[]string{"oauth2.client_id"}, `client id "shop-client" is already used by application "shop"`},
		{"second subscription of an application to an API", Subscription{Tenant: "acme", Name: "dup", Application: "shop", API: "orders", Plan: "gold", State: StateActive},
			[]string{"api"}, `application "shop" already subscribes to api "orders" through subscription "shop-orders"`},
	}
	put(t, s, shopOrders)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Put(ctx, tc.obj, AnyVersion, ManagedByAPI)
			if got := fieldsOf(err); !reflect.DeepEqual(got, tc.wantFields) {
				t.Fatalf("fields = %q (%v), want %q", got, err, tc.wantFields)
			}
			mustContain(t, err, tc.wantInMsg)
		})
	}
	t.Run("another tenant may reuse them", func(t *testing.T) {
		put(t, s, Application{Tenant: "globex", Name: "shop", APIKeyHashes: []string{keyHash("shop-key")}})
	})
	t.Run("a deleted application frees them", func(t *testing.T) {
		if err := s.Delete(ctx, KindApplication, "acme", "kiosk", AnyVersion); err != nil {
			t.Fatal(err)
		}
		put(t, s, Application{Tenant: "acme", Name: "kiosk2", Certificates: []CertificateRef{{Fingerprint: fp}}})
	})
	t.Run("an application may keep its own credentials on update", func(t *testing.T) {
		app := shop
		app.APIKeyHashes = append([]string{keyHash("new")}, shop.APIKeyHashes...)
		put(t, s, app)
	})
}

// colons writes a hex fingerprint in upper case with colons, as openssl
// prints it.
func colons(hexfp string) string {
	var parts []string
	for i := 0; i < len(hexfp); i += 2 {
		parts = append(parts, strings.ToUpper(hexfp[i:i+2]))
	}
	return strings.Join(parts, ":")
}

func TestPagination(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	put(t, s, acme)
	want := make([]string, 0, 250)
	for i := range 250 {
		name := fmt.Sprintf("app-%03d", i)
		put(t, s, Application{Tenant: "acme", Name: name})
		want = append(want, name)
	}

	var got []string
	var sizes []int
	page := Page{Size: 100}
	for {
		items, next, err := s.List(ctx, KindApplication, "acme", page)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(items))
		for _, r := range items {
			got = append(got, r.Key().Name)
		}
		if len(sizes) == 1 {
			// A row inserted before the cursor must not shift later pages.
			put(t, s, Application{Tenant: "acme", Name: "app-000a"})
		}
		if next == "" {
			break
		}
		page.Token = next
	}
	if !slices.Equal(sizes, []int{100, 100, 50}) {
		t.Errorf("page sizes = %v, want [100 100 50]", sizes)
	}
	if !slices.Equal(got, want) {
		t.Errorf("listed %d names, want the 250 in order without duplicates or gaps", len(got))
	}

	t.Run("across tenants", func(t *testing.T) {
		put(t, s, Tenant{Name: "globex"})
		put(t, s, Application{Tenant: "globex", Name: "a"})
		var all []Key
		page := Page{Size: 7}
		for {
			items, next, err := s.List(ctx, KindApplication, AllTenants, page)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range items {
				all = append(all, r.Key())
			}
			if next == "" {
				break
			}
			page.Token = next
		}
		if len(all) != 252 || all[251] != (Key{KindApplication, "globex", "a"}) {
			t.Fatalf("listed %d across tenants, last %v; want 252 ending with globex/a", len(all), all[len(all)-1])
		}
	})

	t.Run("bad arguments", func(t *testing.T) {
		_, next, _ := s.List(ctx, KindApplication, "acme", Page{Size: 1})
		for name, call := range map[string]func() error{
			"token of another listing": func() error { _, _, err := s.List(ctx, KindPlan, "acme", Page{Token: next}); return err },
			"garbage token":            func() error { _, _, err := s.List(ctx, KindApplication, "acme", Page{Token: "!!"}); return err },
			"page too large": func() error {
				_, _, err := s.List(ctx, KindApplication, "acme", Page{Size: MaxPageSize + 1})
				return err
			},
			"unknown kind":   func() error { _, _, err := s.List(ctx, "gadget", "acme", Page{}); return err },
			"tenant missing": func() error { _, _, err := s.List(ctx, KindApplication, "", Page{}); return err },
		} {
			if err := call(); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", name, err)
			}
		}
	})
}

func TestRevisionMovesOnEveryChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	last, err := s.Revision(ctx)
	if err != nil || last != 0 {
		t.Fatalf("new store revision = %d, %v; want 0", last, err)
	}
	steps := []struct {
		name  string
		do    func() error
		moves bool
	}{
		{"create", func() error { _, err := s.Put(ctx, acme, CreateOnly, ManagedByAPI); return err }, true},
		{"identical put", func() error { _, err := s.Put(ctx, acme, AnyVersion, ManagedByAPI); return err }, false},
		{"update", func() error { _, err := s.Put(ctx, Tenant{Name: "acme"}, AnyVersion, ManagedByAPI); return err }, true},
		{"rejected put", func() error { _, _ = s.Put(ctx, Plan{Tenant: "nope", Name: "p"}, AnyVersion, ManagedByAPI); return nil }, false},
		{"apply", func() error { _, err := s.ApplyFile(ctx, []Object{gold}); return err }, true},
		{"same apply", func() error { _, err := s.ApplyFile(ctx, []Object{gold}); return err }, false},
		{"apply pruning", func() error { _, err := s.ApplyFile(ctx, nil); return err }, true},
		{"delete", func() error { return s.Delete(ctx, KindTenant, "", "acme", AnyVersion) }, true},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		rev, err := s.Revision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if moved := rev > last; moved != st.moves || rev < last {
			t.Errorf("%s: revision %d → %d, want moved=%v", st.name, last, rev, st.moves)
		}
		last = rev
	}
}

func TestAuditTrail(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := WithActor(context.Background(), "CN=alice")
	put(t, s, acme)
	if _, err := s.Put(ctx, gold, CreateOnly, ManagedByAPI); err != nil {
		t.Fatal(err)
	}
	updated := gold
	updated.Quota = nil
	if _, err := s.Put(ctx, updated, AnyVersion, ManagedByAPI); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, KindPlan, "acme", "gold", AnyVersion); err != nil {
		t.Fatal(err)
	}
	if err := s.Audit(ctx, AuditEntry{Who: "CN=alice", Action: "export", Kind: KindPlan, Tenant: "acme", Name: "gold"}); err != nil {
		t.Fatal(err)
	}

	entries, next, err := s.ListAudit(context.Background(), "acme", Page{})
	if err != nil || next != "" {
		t.Fatalf("ListAudit: %v, next %q", err, next)
	}
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
		if e.Who != "CN=alice" || e.Kind != KindPlan || e.Name != "gold" || e.At.IsZero() {
			t.Errorf("entry %+v: want who CN=alice about plan gold with a time", e)
		}
	}
	if want := []string{"export", ActionDelete, ActionUpdate, ActionCreate}; !slices.Equal(actions, want) {
		t.Fatalf("actions newest first = %v, want %v", actions, want)
	}
	del, upd, cre := entries[1], entries[2], entries[3]
	goldHash, _ := Hash(gold)
	updHash, _ := Hash(updated)
	if cre.BeforeHash != "" || cre.AfterHash != goldHash || upd.BeforeHash != goldHash || upd.AfterHash != updHash ||
		del.BeforeHash != updHash || del.AfterHash != "" {
		t.Errorf("hashes do not chain: create %+v, update %+v, delete %+v", cre, upd, del)
	}

	all, _, err := s.ListAudit(context.Background(), AllTenants, Page{Size: 2})
	if err != nil || len(all) != 2 || all[0].ID <= all[1].ID {
		t.Fatalf("ListAudit(all, 2) = %+v, %v", all, err)
	}
	tenants, _, _ := s.ListAudit(context.Background(), "", Page{})
	if len(tenants) != 1 || tenants[0].Who != string(ManagedByAPI) || tenants[0].Name != "acme" {
		t.Errorf("tenant entries = %+v, want acme's creation by %q (no actor set)", tenants, ManagedByAPI)
	}
	if err := s.Audit(ctx, AuditEntry{Action: "export"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("entry without who: %v, want ErrInvalid", err)
	}
}

func TestResourceJSON(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	seed(t, s)
	r := put(t, s, shopOrders)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Resource
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	if !reflect.DeepEqual(back.Object, r.Object) || back.Version != r.Version || !back.UpdatedAt.Equal(r.UpdatedAt) {
		t.Errorf("round trip: %+v, want %+v", back, r)
	}
	if _, err := DecodeObject(KindPlan, []byte(`{"tenant":"acme","name":"p","rate_limt":{}}`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown field: %v, want ErrInvalid", err)
	}
	if _, err := DecodeObject(KindPlan, []byte(`{"tenant":"acme","name":"p"} {}`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("trailing data: %v, want ErrInvalid", err)
	}
	if _, err := DecodeObject("gadget", []byte(`{}`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown kind: %v, want ErrInvalid", err)
	}
}

func TestReadAllIsOrderedByDependency(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	seed(t, s)
	put(t, s, shopOrders)
	rev, all, err := s.ReadAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var kinds []Kind
	for _, r := range all {
		kinds = append(kinds, r.Key().Kind)
	}
	want := []Kind{KindTenant, KindAPI, KindPlan, KindApplication, KindSubscription}
	if cur, _ := s.Revision(context.Background()); rev != cur || !slices.Equal(kinds, want) {
		t.Errorf("ReadAll = revision %d, kinds %v; want %d, %v", rev, kinds, cur, want)
	}
}

func TestConcurrentPuts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	seed(t, s)
	const workers, perWorker = 8, 20

	// Each worker increments the plan's rate through read-modify-write
	// with If-Match, retrying on conflict: no increment may be lost.
	// Meanwhile it creates applications of its own, and readers list.
	var wg sync.WaitGroup
	errs := make(chan error, workers*2)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				for {
					cur, err := s.Get(ctx, KindPlan, "acme", "gold")
					if err != nil {
						errs <- err
						return
					}
					p := cur.Object.(Plan)
					rl := *p.RateLimit
					rl.Rate++
					p.RateLimit = &rl
					_, err = s.Put(ctx, p, cur.Version, ManagedByAPI)
					if errors.Is(err, ErrVersionConflict) {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
				put(t, s, Application{Tenant: "acme", Name: fmt.Sprintf("w%d-%d", w, i)})
			}
		})
		wg.Go(func() {
			for range perWorker {
				if _, _, err := s.List(ctx, KindApplication, "acme", Page{Size: 10}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, _ := s.Get(ctx, KindPlan, "acme", "gold")
	if rate := got.Object.(Plan).RateLimit.Rate; rate != gold.RateLimit.Rate+workers*perWorker {
		t.Errorf("rate = %d, want %d: increments were lost", rate, gold.RateLimit.Rate+workers*perWorker)
	}
	apps, _, _ := s.List(ctx, KindApplication, "acme", Page{Size: MaxPageSize})
	if len(apps) != 1+workers*perWorker {
		t.Errorf("%d applications, want %d", len(apps), 1+workers*perWorker)
	}
}

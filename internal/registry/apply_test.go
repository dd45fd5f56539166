package registry

import (
	"context"
	"errors"
	"testing"
)

func TestApplyFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	// The file may list a resource before the ones it refers to.
	file := []Object{shopOrders, gold, shop, orders, acme}

	n, err := s.ApplyFile(ctx, file)
	if err != nil || n != 5 {
		t.Fatalf("first apply = %d, %v; want 5 changes", n, err)
	}
	rev, _ := s.Revision(ctx)
	for _, o := range file {
		r, err := s.Get(ctx, o.Key().Kind, o.Key().Tenant, o.Key().Name)
		if err != nil || r.ManagedBy != ManagedByFile {
			t.Fatalf("%s after apply: %+v, %v; want file-managed", o.Key(), r, err)
		}
	}

	t.Run("second apply changes nothing", func(t *testing.T) {
		n, err := s.ApplyFile(ctx, file)
		if rev2, _ := s.Revision(ctx); err != nil || n != 0 || rev2 != rev {
			t.Fatalf("second apply = %d, %v, revision %d → %d; want 0 changes", n, err, rev, rev2)
		}
	})

	// An API-managed plan and subscription live beside the file's resources.
	silver := Plan{Tenant: "acme", Name: "silver"}
	put(t, s, silver)

	t.Run("removing a resource the API still uses is refused whole", func(t *testing.T) {
		app := Application{Tenant: "acme", Name: "kiosk"}
		put(t, s, app)
		put(t, s, Subscription{Tenant: "acme", Name: "kiosk-orders", Application: "kiosk", API: "orders", Plan: "silver", State: StateActive})
		before, _ := s.Revision(ctx)
		edited := gold
		edited.Quota = nil
		// Drops orders and changes gold: neither may happen.
		_, err := s.ApplyFile(ctx, []Object{acme, edited, shop})
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("got %v, want ErrInvalid", err)
		}
		mustContain(t, err, `cannot remove from the file api "orders" in tenant "acme"`, `subscription "kiosk-orders"`)
		if after, _ := s.Revision(ctx); after != before {
			t.Errorf("a refused apply moved the revision %d → %d", before, after)
		}
		if r, _ := s.Get(ctx, KindPlan, "acme", "gold"); r.Object.(Plan).Quota == nil {
			t.Error("a refused apply changed the plan")
		}
		if err := s.Delete(ctx, KindSubscription, "acme", "kiosk-orders", AnyVersion); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, KindApplication, "acme", "kiosk", AnyVersion); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("pruning removes file-managed resources only", func(t *testing.T) {
		n, err := s.ApplyFile(ctx, []Object{acme, orders, shop})
		if err != nil || n != 2 {
			t.Fatalf("apply = %d, %v; want 2 deletions (subscription, gold)", n, err)
		}
		for _, k := range []Key{shopOrders.Key(), gold.Key()} {
			if _, err := s.Get(ctx, k.Kind, k.Tenant, k.Name); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s after pruning: %v, want ErrNotFound", k, err)
			}
		}
		if r, err := s.Get(ctx, KindPlan, "acme", "silver"); err != nil || r.ManagedBy != ManagedByAPI {
			t.Errorf("the API-managed plan after pruning: %+v, %v", r, err)
		}
	})

	t.Run("the file takes over an API-managed resource", func(t *testing.T) {
		n, err := s.ApplyFile(ctx, []Object{acme, orders, shop, silver})
		if err != nil || n != 1 {
			t.Fatalf("apply = %d, %v; want 1", n, err)
		}
		if r, _ := s.Get(ctx, KindPlan, "acme", "silver"); r.ManagedBy != ManagedByFile {
			t.Errorf("silver is managed by %q, want file", r.ManagedBy)
		}
	})

	t.Run("invalid files change nothing and report every problem", func(t *testing.T) {
		before, _ := s.Revision(ctx)
		_, err := s.ApplyFile(ctx, []Object{
			acme, acme,
			Plan{Tenant: "acme", Name: "bad", Quota: &Quota{Limit: 0, Window: "week"}},
			Subscription{Tenant: "acme", Name: "s", Application: "shop", API: "orders", Plan: "missing", State: StateActive},
		})
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("got %v, want ErrInvalid", err)
		}
		mustContain(t, err, `tenant "acme" is declared twice`, "quota.limit", "quota.window")
		if after, _ := s.Revision(ctx); after != before {
			t.Errorf("revision moved %d → %d", before, after)
		}
		_, err = s.ApplyFile(ctx, []Object{acme, orders, shop, silver,
			Subscription{Tenant: "acme", Name: "s", Application: "shop", API: "orders", Plan: "missing", State: StateActive}})
		mustContain(t, err, `unknown plan "missing"`)
		if after, _ := s.Revision(ctx); after != before {
			t.Errorf("revision moved %d → %d", before, after)
		}
	})

	t.Run("audited as the file", func(t *testing.T) {
		entries, _, err := s.ListAudit(ctx, "acme", Page{Size: 1})
		if err != nil || len(entries) != 1 || entries[0].Who != string(ManagedByFile) {
			t.Fatalf("latest entry = %+v, %v; want one by %q", entries, err, ManagedByFile)
		}
	})
}

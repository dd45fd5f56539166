package snapshot

import (
	"slices"
	"testing"

	"github.com/portcullis/portcullis/internal/config"
)

func TestSubscriptionScopes(t *testing.T) {
	f := config.File{
		Plans: []config.Plan{{Name: "gold", Scopes: []string{"orders:read", "orders:write"}}, {Name: "free"}},
		Applications: []config.Application{
			{ID: "a", OAuth2: &config.OAuth2Client{Scopes: []string{"x"}}},
			{ID: "b", OAuth2: &config.OAuth2Client{Scopes: []string{"y", "z"}}},
			{ID: "c"},
		},
		Subscriptions: []config.Subscription{
			{Application: "a", API: "orders", Plan: "gold"},
			{Application: "b", API: "orders", Plan: "free"},
			{Application: "c", API: "orders", Plan: "gold", State: "suspended"},
		},
	}
	fn := subscriptionScopes(f)
	for app, want := range map[string][]string{"a": {"orders:read", "orders:write"}, "b": {"y", "z"}, "c": nil, "unknown": nil} {
		if got := fn(app); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", app, got, want)
		}
	}
	f.Plans[0].Scopes = nil
	if subscriptionScopes(f) != nil {
		t.Error("no plan names scopes: nothing should be limited")
	}
}

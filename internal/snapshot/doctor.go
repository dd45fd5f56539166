package snapshot

import "github.com/portcullis/portcullis/internal/auth"

// API returns the API whose gateway-wide ID is name ("orders" in the
// default tenant, "acme/orders" in tenant acme), or nil when the snapshot
// has none.
func (s *Snapshot) API(name string) *API {
	for _, a := range s.APIs {
		if a.ID == name {
			return a
		}
	}
	return nil
}

// Authenticator returns the API's compiled authenticator (its Name says
// which methods it combines), or nil for an open API. `portcullis doctor
// client` runs it on a request carrying a certificate to explain a
// decision without a live connection.
func (a *API) Authenticator() auth.Authenticator { return a.auth }

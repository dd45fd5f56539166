// Package registry stores the management resources of a Portcullis gateway
// — tenants, APIs, applications and their credentials, plans,
// subscriptions, certificates and trust sets — behind the Store interface,
// with an embedded SQLite implementation (SQLiteStore) and a schema meant to
// carry over to PostgreSQL unchanged for callers.
//
// Every resource is identified by a Key (kind, tenant, name) and carries a
// version that grows on every change and serves as its ETag, the time it
// was created and last updated, and who manages it: resources applied from
// the gateway's YAML file are managed by the file (ManagedByFile) and the
// admin API may not edit or delete them; everything else is managed by the
// API (ManagedByAPI).
//
// Writes are checked before they are stored: each object validates its own
// fields (Object.Validate), references to other resources must resolve
// inside the same tenant, credentials (API key hashes, certificate
// fingerprints, OAuth2 client ids) may belong to only one application per
// tenant, an application may hold only one subscription per API, and a
// resource that is still referenced cannot be deleted. A write that fails
// any check changes nothing.
//
// A global revision moves on every change, so a gateway can poll Revision
// cheaply and rebuild its runtime snapshot from ReadAll only when the
// registry has actually changed. Every change also leaves an audit entry in
// the same transaction, attributed to the actor set with WithActor.
package registry

// Package admin serves the /admin/v1 management API of a Portcullis gateway:
// create, read, replace and delete registry resources (tenants, APIs,
// applications, plans, subscriptions, certificates and trust sets), read the
// audit log, and describe itself with an OpenAPI 3.1 document.
//
// Every request is authenticated, either by a client certificate that a
// Verifier accepts for client authentication and that matches a
// ClientCertRule, or by an "Authorization: Bearer" token whose SHA-256 hash
// is configured; anything else is refused with 401 admin.unauthenticated
// (fails closed: with no rules and no tokens, nobody gets in). A principal
// with the admin role may do everything; a tenant-admin only what concerns
// its own tenant.
//
// Writes follow RFC 9110's conditional requests: a resource's version is its
// ETag, If-Match makes a change apply only to the version that was read,
// If-None-Match: * makes a PUT create only, and changing an existing
// resource without a precondition is refused with 428 (RFC 6585), so
// concurrent edits never overwrite each other silently. Every error is an
// RFC 9457 problem document with a stable code from package problem.
//
// The routes are kept in one table, which builds both the ServeMux and the
// OpenAPI document, so the two cannot drift apart.
package admin

// Package snapshot compiles a validated configuration into the immutable
// runtime view the request path reads: per-listener TLS configurations and
// routers, and per-API upstream transports. A Holder swaps whole snapshots
// atomically, so a request runs start to finish on the snapshot it began with.
package snapshot

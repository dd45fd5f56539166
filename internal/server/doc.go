// Package server runs the listeners: TLS termination with the current
// snapshot's certificates, routing, the compiled per-API pipeline, problem
// responses, the access log, reload and graceful shutdown.
//
// Every request reads the snapshot once, at its start, and runs to the end on
// it; a reload swaps the snapshot for requests that start afterwards.
package server

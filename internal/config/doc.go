// Package config owns Portcullis's configuration file: the typed model, strict
// loading with the line and column of every key, the defaults (all in
// defaults.go), and validation that reports every problem with its position,
// key path and a hint.
//
// It holds data only: it imports neither net/http nor crypto/tls. The snapshot
// package turns a validated File into listeners, transports and pipelines.
package config

// Package cli holds portcullis's subcommands and wires the packages together:
// it is the only place that reads the configuration file into a running
// server.
package cli

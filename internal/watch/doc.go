// Package watch reports when the content of a set of files changes, for hot
// reload of the configuration and the credentials it names.
//
// Following the pitfalls in DESIGN.md §7, it watches the directories that
// hold the files rather than the files themselves: an atomic replacement
// (write a temporary file, rename it over the old one) and a Kubernetes
// secret update (a new timestamped directory, then the "..data" symlink
// swapped to it) show up as CREATE or RENAME events in the directory, never
// as a WRITE on the file. Events are debounced (a burst of writes gives one
// check), and a check re-hashes every watched file with SHA-256 and signals
// only when a hash differs from the last one seen, so touching a file or
// rewriting it with the same bytes does nothing. A periodic re-read runs the
// same check as a fallback for file systems that deliver no events.
package watch

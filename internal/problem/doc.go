// Package problem owns the RFC 9457 problem document that every rejection
// becomes, the catalogue of stable machine-readable codes, and the one writer
// that puts a document on the wire.
//
// An Error has two audiences: the client sees Status, Code, a safe Detail and
// the request id; the operator's log gets Cause and Diagnosis, which never
// leave the gateway.
package problem

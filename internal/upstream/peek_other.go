//go:build !unix

package upstream

// peek cannot look at the socket on this platform: the connection is
// assumed usable (a failure on it is retried as the Transport retries).
func (p *peeker) peek(uintptr) bool {
	p.res = peekUnknown
	return true
}

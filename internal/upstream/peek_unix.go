//go:build unix

package upstream

import "syscall"

// peek looks, without blocking and without consuming anything, whether an
// idle connection's socket has data or was closed by the peer. It is the
// callback of syscall.RawConn.Read, made once per connection so that a
// check allocates nothing.
func (p *peeker) peek(fd uintptr) bool {
	n, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
		p.res = peekEmpty
	case err != nil, n == 0:
		p.res = peekClosed
	default:
		p.res = peekData
	}
	return true // never wait
}

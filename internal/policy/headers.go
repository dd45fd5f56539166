package policy

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
)

// HeaderRule changes one header of a request or response.
type HeaderRule struct {
	// Op is "set" (replace every value), "add" (append a value) or
	// "remove" (delete every value).
	Op string
	// Name is the header name, an RFC 9110 token. Framing and hop-by-hop
	// headers (Host, Content-Length, Transfer-Encoding, Connection, …) are
	// refused: rewriting them could desynchronise the proxy and the peer.
	Name string
	// Value is the value for set and add, empty for remove. It may contain
	// the variables ${application}, ${client_cert_subject},
	// ${client_cert_sha256}, ${client_ip}, ${request_id} and ${api}; any
	// other "${" is an error, and a "$" not followed by "{" is literal.
	Value string
}

// Vars are the values a request offers to header rule variables. Empty
// fields expand to the empty string.
type Vars struct {
	Application, ClientCertSubject, ClientCertSHA256, ClientIP, RequestID, API string
}

type varID uint8

const (
	varNone varID = iota
	varApplication
	varClientCertSubject
	varClientCertSHA256
	varClientIP
	varRequestID
	varAPI
)

var varNames = map[string]varID{
	"application":         varApplication,
	"client_cert_subject": varClientCertSubject,
	"client_cert_sha256":  varClientCertSHA256,
	"client_ip":           varClientIP,
	"request_id":          varRequestID,
	"api":                 varAPI,
}

func (v *Vars) get(id varID) string {
	switch id {
	case varApplication:
		return v.Application
	case varClientCertSubject:
		return v.ClientCertSubject
	case varClientCertSHA256:
		return v.ClientCertSHA256
	case varClientIP:
		return v.ClientIP
	case varRequestID:
		return v.RequestID
	case varAPI:
		return v.API
	}
	return ""
}

type headerOp uint8

const (
	opSet headerOp = iota + 1
	opAdd
	opRemove
)

// part is a literal or a variable of a templated value.
type part struct {
	lit string
	v   varID
}

type compiledRule struct {
	op    headerOp
	name  string // canonical
	parts []part
}

// HeaderRules applies header rules in order. It is immutable after
// NewHeaderRules, except for the count of dropped values, and safe for
// concurrent use.
type HeaderRules struct {
	rules   []compiledRule
	dropped atomic.Uint64
}

// forbiddenHeaders cannot be changed by rules: they frame the message or
// belong to one hop, and Go's transport derives them itself.
var forbiddenHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"Keep-Alive": true, "Proxy-Connection": true, "Te": true, "Trailer": true, "Upgrade": true,
}

// NewHeaderRules compiles rules, parsing each value template once. Errors
// name the rule by index and the unknown operation, invalid name, unknown
// variable or illegal character.
func NewHeaderRules(rules []HeaderRule) (*HeaderRules, error) {
	h := &HeaderRules{rules: make([]compiledRule, 0, len(rules))}
	for i, r := range rules {
		c, err := compileHeaderRule(r)
		if err != nil {
			return nil, fmt.Errorf("header rule %d (%s %s): %w", i, r.Op, r.Name, err)
		}
		h.rules = append(h.rules, c)
	}
	return h, nil
}

func compileHeaderRule(r HeaderRule) (compiledRule, error) {
	var c compiledRule
	switch r.Op {
	case "set":
		c.op = opSet
	case "add":
		c.op = opAdd
	case "remove":
		c.op = opRemove
	default:
		return c, fmt.Errorf("unknown op %q: must be set, add or remove", r.Op)
	}
	if !isToken(r.Name) {
		return c, fmt.Errorf("name %q: not a valid header name", r.Name)
	}
	c.name = http.CanonicalHeaderKey(r.Name)
	if forbiddenHeaders[c.name] {
		return c, fmt.Errorf("name %q: framing and hop-by-hop headers cannot be changed by rules", r.Name)
	}
	if c.op == opRemove {
		if r.Value != "" {
			return c, fmt.Errorf("remove takes no value")
		}
		return c, nil
	}
	if r.Value == "" {
		return c, fmt.Errorf("%s needs a value (use remove to delete a header)", r.Op)
	}
	parts, err := parseTemplate(r.Value)
	if err != nil {
		return c, err
	}
	c.parts = parts
	return c, nil
}

// parseTemplate splits v into literals and variables.
func parseTemplate(v string) ([]part, error) {
	if i := strings.IndexFunc(v, func(r rune) bool { return !validValueRune(r) }); i >= 0 {
		return nil, fmt.Errorf("value has a control character at byte %d", i)
	}
	var parts []part
	for v != "" {
		i := strings.Index(v, "${")
		if i < 0 {
			parts = append(parts, part{lit: v})
			break
		}
		if i > 0 {
			parts = append(parts, part{lit: v[:i]})
		}
		end := strings.IndexByte(v[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unterminated variable in %q", v[i:])
		}
		name := v[i+2 : i+end]
		id, ok := varNames[name]
		if !ok {
			return nil, fmt.Errorf("unknown variable ${%s}: must be one of ${application}, ${client_cert_subject}, ${client_cert_sha256}, ${client_ip}, ${request_id}, ${api}", name)
		}
		parts = append(parts, part{v: id})
		v = v[i+end+1:]
	}
	return parts, nil
}

// validValueRune allows what RFC 9110 §5.5 allows in a field value:
// visible characters, space, tab and non-ASCII (obs-text), but no other
// control character.
func validValueRune(r rune) bool {
	return r == '\t' || (r >= 0x20 && r != 0x7f)
}

// validValue is validValueRune over the bytes of s.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// Apply runs the rules on hdr in order, expanding variables from v (nil
// means all empty).
//
// A variable value holding a control character (CR, LF, NUL, …) is never
// written: the rule's header is dropped instead (set removes any existing
// value, so a client cannot supply it in the variable's place; add adds
// nothing) and Dropped counts it. A value that expands to the empty string
// is treated the same way without being counted. Each set or add allocates
// its value slice, and a value with variables its string.
func (h *HeaderRules) Apply(hdr http.Header, v *Vars) {
	var empty Vars
	if v == nil {
		v = &empty
	}
	for i := range h.rules {
		r := &h.rules[i]
		if r.op == opRemove {
			delete(hdr, r.name)
			continue
		}
		val, ok := r.expand(v)
		if !ok {
			h.dropped.Add(1)
		}
		if !ok || val == "" {
			if r.op == opSet {
				delete(hdr, r.name)
			}
			continue
		}
		if r.op == opSet {
			hdr[r.name] = []string{val}
		} else {
			hdr[r.name] = append(hdr[r.name], val)
		}
	}
}

// expand builds the value; ok is false when a variable is unsafe.
func (r *compiledRule) expand(v *Vars) (string, bool) {
	if len(r.parts) == 1 {
		if p := r.parts[0]; p.v == varNone {
			return p.lit, true
		} else if s := v.get(p.v); validValue(s) {
			return s, true
		}
		return "", false
	}
	n := 0
	for _, p := range r.parts {
		if p.v == varNone {
			n += len(p.lit)
			continue
		}
		s := v.get(p.v)
		if !validValue(s) {
			return "", false
		}
		n += len(s)
	}
	if n == 0 {
		return "", true
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range r.parts {
		if p.v == varNone {
			b.WriteString(p.lit)
		} else {
			b.WriteString(v.get(p.v))
		}
	}
	return b.String(), true
}

// Dropped returns how many header values Apply has refused because a
// variable held a control character, for metrics.
func (h *HeaderRules) Dropped() uint64 { return h.dropped.Load() }

package config

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// TLSVersion is a minimum TLS protocol version: "1.2" or "1.3".
type TLSVersion string

// Valid TLS versions. Older versions are not offered at all.
const (
	TLS12 TLSVersion = "1.2"
	TLS13 TLSVersion = "1.3"
)

// UnmarshalYAML accepts "1.2" and "1.3" (also written as numbers) and rejects
// anything else, naming the valid values.
func (v *TLSVersion) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimPrefix(strings.ToLower(n.Value), "tls")
	s = strings.TrimPrefix(s, "v")
	switch s {
	case "1.2", "1.3":
		*v = TLSVersion(s)
		return nil
	}
	return nodeError(n, "unsupported TLS version %q (valid: \"1.2\", \"1.3\")", n.Value)
}

// LogLevel is debug, info, warn or error.
type LogLevel string

// UnmarshalYAML rejects unknown levels, naming the valid ones.
func (l *LogLevel) UnmarshalYAML(n *yaml.Node) error {
	switch s := strings.ToLower(n.Value); s {
	case "debug", "info", "warn", "error":
		*l = LogLevel(s)
		return nil
	}
	return nodeError(n, "unknown log level %q (valid: debug, info, warn, error)", n.Value)
}

// ByteSize is a size in bytes, written as a number or with a unit: 512,
// 64KiB, 10MiB, 1GiB (also KB/MB/GB as powers of 1000). -1 means no limit
// where a field allows it.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30},
	{"b", 1},
}

// UnmarshalYAML parses a size with an optional unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return nodeError(n, "%v", err)
	}
	*b = v
	return nil
}

// ParseByteSize parses "10MiB", "64KiB", "512" or "-1".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || (n < 0 && n != -1) {
		return 0, fmt.Errorf("invalid size %q (write a number of bytes or use a unit: 64KiB, 10MiB, 1GiB; -1 for no limit)", s)
	}
	if n == -1 {
		return -1, nil
	}
	return ByteSize(n * mult), nil
}

// nodeError reports a bad value so that the YAML decoder collects it with the
// others (a plain error would abort decoding at the first one).
func nodeError(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: column %d: %s", n.Line, n.Column, fmt.Sprintf(format, args...))}}
}

// StringList accepts either one string or a list of strings.
type StringList []string

// UnmarshalYAML accepts a scalar or a sequence of scalars.
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = StringList{n.Value}
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}

// ClientCertMode is a listener's client-certificate mode.
type ClientCertMode string

// Client-certificate modes.
const (
	ClientCertNone    ClientCertMode = "none"
	ClientCertRequest ClientCertMode = "request"
	ClientCertRequire ClientCertMode = "require"
)

// UnmarshalYAML rejects unknown modes, naming the valid ones.
func (m *ClientCertMode) UnmarshalYAML(n *yaml.Node) error {
	return enum(n, (*string)(m), "client certificate mode", "none", "request", "require")
}

// ForwardMode is how the verified client certificate reaches the upstream.
type ForwardMode string

// Forwarding modes.
const (
	ForwardRFC9440 ForwardMode = "rfc9440"
	ForwardXFCC    ForwardMode = "xfcc"
	ForwardNone    ForwardMode = "none"
)

// UnmarshalYAML rejects unknown modes, naming the valid ones.
func (m *ForwardMode) UnmarshalYAML(n *yaml.Node) error {
	return enum(n, (*string)(m), "forward_client_cert mode", "rfc9440", "xfcc", "none")
}

// RevocationPolicy decides what happens when revocation data is unavailable.
type RevocationPolicy string

// Revocation policies.
const (
	FailClosed RevocationPolicy = "fail_closed"
	FailOpen   RevocationPolicy = "fail_open"
)

// UnmarshalYAML rejects unknown policies, naming the valid ones.
func (p *RevocationPolicy) UnmarshalYAML(n *yaml.Node) error {
	return enum(n, (*string)(p), "revocation policy", "fail_closed", "fail_open")
}

func enum(n *yaml.Node, into *string, what string, valid ...string) error {
	for _, v := range valid {
		if n.Value == v {
			*into = v
			return nil
		}
	}
	return nodeError(n, "unknown %s %q (valid: %s)", what, n.Value, strings.Join(valid, ", "))
}

// AuthSpec is an authentication expression: the name of one authenticator
// (mtls, api_key), or a mapping with any_of or all_of listing expressions.
type AuthSpec struct {
	Name  string     `yaml:"-"`
	AnyOf []AuthSpec `yaml:"any_of"`
	AllOf []AuthSpec `yaml:"all_of"`
}

// Authenticators are the names an AuthSpec may use.
var Authenticators = []string{"mtls", "api_key", "oauth2"}

// UnmarshalYAML accepts "mtls", "api_key", {any_of: [...]} or {all_of: [...]}.
func (a *AuthSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		for _, v := range Authenticators {
			if n.Value == v {
				a.Name = v
				return nil
			}
		}
		return nodeError(n, "unknown authenticator %q (valid: %s, or any_of / all_of lists)", n.Value, strings.Join(Authenticators, ", "))
	}
	type plain AuthSpec
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*a = AuthSpec(p)
	if (len(a.AnyOf) > 0) == (len(a.AllOf) > 0) {
		return nodeError(n, "write exactly one of any_of or all_of, with at least one authenticator")
	}
	return nil
}

// Uses reports whether the expression mentions the named authenticator.
func (a *AuthSpec) Uses(name string) bool {
	if a == nil {
		return false
	}
	if a.Name == name {
		return true
	}
	for i := range a.AnyOf {
		if a.AnyOf[i].Uses(name) {
			return true
		}
	}
	for i := range a.AllOf {
		if a.AllOf[i].Uses(name) {
			return true
		}
	}
	return false
}

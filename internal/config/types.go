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
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, fmt.Sprintf(format, args...))}}
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

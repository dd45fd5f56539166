package authserver

import (
	"errors"
	"slices"
	"strconv"
	"strings"
)

// normalizeDN returns the comparison key of a distinguished name written
// in RFC 4514 form ("CN=client,O=Example"): RDNs in the order written,
// attribute types upper-cased, unescaped spaces around '=', ',' and '+'
// removed, and the values of a multi-valued RDN sorted (they form a SET).
// Values are otherwise compared exactly, escapes included, because
// pkix.Name.String, which the certificate side goes through, writes one
// canonical escaping.
func normalizeDN(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("empty distinguished name")
	}
	rdns, err := splitUnescaped(s, ',')
	if err != nil {
		return "", err
	}
	for i, rdn := range rdns {
		atvs, err := splitUnescaped(rdn, '+')
		if err != nil {
			return "", err
		}
		for j, atv := range atvs {
			typ, val, ok := strings.Cut(atv, "=")
			typ = strings.ToUpper(strings.TrimSpace(typ))
			if !ok || typ == "" {
				return "", errors.New("distinguished name component " + strconv.QuoteToASCII(atv) + " is not TYPE=value")
			}
			atvs[j] = typ + "=" + trimUnescapedSpace(val)
		}
		slices.Sort(atvs)
		rdns[i] = strings.Join(atvs, "+")
	}
	return strings.Join(rdns, ","), nil
}

// splitUnescaped splits s at every sep not preceded by a backslash escape.
func splitUnescaped(s string, sep byte) ([]string, error) {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 == len(s) {
				return nil, errors.New("distinguished name ends in a lone backslash")
			}
			i++
		case sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:]), nil
}

// trimUnescapedSpace removes leading spaces and trailing spaces that are
// not escaped: RFC 4514 writes a significant trailing space as "\ ".
func trimUnescapedSpace(s string) string {
	s = strings.TrimLeft(s, " ")
	for strings.HasSuffix(s, " ") {
		backslashes := 0
		for j := len(s) - 2; j >= 0 && s[j] == '\\'; j-- {
			backslashes++
		}
		if backslashes%2 == 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

package cli_test

import (
	"fmt"
	"os"
	"strings"
	"sync"
)

// suiteLogs collects everything every gateway started by these tests wrote
// (process log and access log), and suiteSecrets every secret the tests
// used, so TestMain can check once, over the whole suite, that no secret
// ever reached a log (issue 7).
var (
	suiteMu      sync.Mutex
	suiteLogs    []string
	suiteSecrets = map[string]bool{}
)

// secret records s as a secret the logs must never contain, and returns it.
func secret(s string) string {
	if s == "" {
		return s
	}
	suiteMu.Lock()
	defer suiteMu.Unlock()
	suiteSecrets[s] = true
	return s
}

func collectLogs(out ...string) {
	suiteMu.Lock()
	defer suiteMu.Unlock()
	suiteLogs = append(suiteLogs, out...)
}

// secretsLeaked reports every secret found in any collected log.
func secretsLeaked() []string {
	suiteMu.Lock()
	defer suiteMu.Unlock()
	var leaks []string
	for s := range suiteSecrets {
		for i, l := range suiteLogs {
			if strings.Contains(l, s) {
				leaks = append(leaks, fmt.Sprintf("secret %.4s… appears in gateway log #%d", s, i))
				break
			}
		}
	}
	return leaks
}

func checkSecrets(code int) int {
	if leaks := secretsLeaked(); len(leaks) > 0 {
		fmt.Fprintln(os.Stderr, "FAIL: secrets leaked into logs:")
		for _, l := range leaks {
			fmt.Fprintln(os.Stderr, "  "+l)
		}
		return 1
	}
	suiteMu.Lock()
	n, s := len(suiteLogs), len(suiteSecrets)
	suiteMu.Unlock()
	// A run of a few tests (go test -run) may start no gateway at all.
	if code == 0 && n > 0 {
		fmt.Fprintf(os.Stderr, "secret check: %d secrets absent from %d gateway logs\n", s, n)
	}
	return code
}

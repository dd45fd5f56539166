package cli

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/portcullis/portcullis/internal/auth"
)

type hashAPIKeyCmd struct {
	Generate bool `help:"Generate a new random key (printed once), then print its hash."`
	passwordFlags
}

// Run prints the value to put under applications[].api_keys. The key itself
// is read like a password (env, file, stdin or prompt) so it never appears on
// the command line.
func (c *hashAPIKeyCmd) Run(g *globals) error {
	var key string
	if c.Generate {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		key = "pk_" + base64.RawURLEncoding.EncodeToString(b)
		fmt.Fprintf(g.stdout, "key:  %s\n(give this to the application; it is not stored anywhere)\n", key)
	} else {
		k, err := c.read("API key", false, false)
		if err != nil {
			return err
		}
		if len(k) == 0 {
			return fmt.Errorf("the API key is empty")
		}
		key = string(k)
	}
	fmt.Fprintf(g.stdout, "hash: %s\n", auth.HashAPIKey(key))
	return nil
}

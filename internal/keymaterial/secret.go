package keymaterial

import (
	"bytes"
	"fmt"
	"os"
)

// SecretRef says where a password lives: in the environment variable Env or
// in the file File. At most one may be set; both empty means no secret.
type SecretRef struct {
	// Env is the name of an environment variable holding the secret.
	Env string
	// File is the path of a file holding the secret. One trailing newline is
	// ignored because editors and `echo` add one.
	File string
}

// IsZero reports whether the reference names no secret.
func (r SecretRef) IsZero() bool { return r.Env == "" && r.File == "" }

// String describes the reference for logs without revealing the secret.
func (r SecretRef) String() string {
	switch {
	case r.Env != "":
		return fmt.Sprintf("env %s", r.Env)
	case r.File != "":
		return fmt.Sprintf("file %q", r.File)
	default:
		return "no secret"
	}
}

// ReadSecret returns the secret ref points at. An empty ref returns nil, nil.
// A variable that is set but empty yields an empty, non-nil secret, because
// some stores really do use the empty password. A file's single trailing
// newline (\n or \r\n) is trimmed; other whitespace is kept since it may be
// part of the password. Errors name the variable or file, never the value.
func ReadSecret(ref SecretRef) ([]byte, error) {
	switch {
	case ref.Env != "" && ref.File != "":
		return nil, fmt.Errorf("secret: both env %s and file %q are set, choose one: %w", ref.Env, ref.File, ErrInvalidSource)
	case ref.Env != "":
		v, ok := os.LookupEnv(ref.Env)
		if !ok {
			return nil, fmt.Errorf("secret: environment variable %s is not set: %w", ref.Env, ErrSecretUnavailable)
		}
		return []byte(v), nil
	case ref.File != "":
		data, err := os.ReadFile(ref.File)
		if err != nil {
			// The os error names the path and the cause, never the content.
			return nil, fmt.Errorf("secret: reading file: %w", err)
		}
		if b, ok := bytes.CutSuffix(data, []byte("\r\n")); ok {
			return b, nil
		}
		data, _ = bytes.CutSuffix(data, []byte("\n"))
		return data, nil
	default:
		return nil, nil
	}
}

package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/portcullis/portcullis/internal/keymaterial"
)

// passwordFlags is how a command is given a password: never as a plain flag
// value (it would land in shell history and ps output), but by naming an
// environment variable or a file, by piping it on stdin, or at a prompt.
type passwordFlags struct {
	PasswordEnv   string `help:"Environment variable holding the password." placeholder:"VAR"`
	PasswordFile  string `help:"File holding the password (one trailing newline ignored)." placeholder:"FILE" type:"path"`
	PasswordStdin bool   `help:"Read the password from the first line of standard input."`
}

// errNoTerminal is returned when a password is needed, none was named, and
// there is no terminal to ask at.
var errNoTerminal = errors.New("a password is needed: set --password-env VAR, --password-file FILE or --password-stdin (no terminal to prompt at)")

// read returns the password, or nil when none was named and optional is
// true. With a terminal and no source named, it prompts without echo
// (twice when confirm is set, for new passwords).
func (p passwordFlags) read(what string, optional, confirm bool) ([]byte, error) {
	switch {
	case p.PasswordStdin:
		line, err := bufio.NewReader(os.Stdin).ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reading the %s from stdin: %w", what, err)
		}
		return bytes.TrimRight(line, "\r\n"), nil
	case p.PasswordEnv != "" || p.PasswordFile != "":
		return keymaterial.ReadSecret(keymaterial.SecretRef{Env: p.PasswordEnv, File: p.PasswordFile})
	case optional:
		return nil, nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, errNoTerminal
	}
	fmt.Fprintf(os.Stderr, "%s: ", what)
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return nil, err
	}
	if confirm {
		fmt.Fprintf(os.Stderr, "%s (again): ", what)
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(pw, again) {
			return nil, errors.New("the two passwords differ")
		}
	}
	return pw, nil
}

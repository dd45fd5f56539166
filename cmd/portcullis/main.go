// Command portcullis is an API gateway with mutual TLS at its centre.
package main

import (
	"os"

	"github.com/portcullis/portcullis/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}

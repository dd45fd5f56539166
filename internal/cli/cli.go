package cli

import (
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"runtime"
	"runtime/debug"

	"github.com/alecthomas/kong"
)

// Version is set at build time with -ldflags "-X .../internal/cli.Version=v1.2.3".
var Version = "dev"

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1 // the command ran and failed (bad configuration, bind error, ...)
	ExitUsage   = 2 // the command line itself was wrong
)

type globals struct {
	stdout, stderr io.Writer
}

type cliModel struct {
	Serve      serveCmd      `cmd:"" help:"Run the gateway with a configuration file."`
	Validate   validateCmd   `cmd:"" help:"Check a configuration file and the key material it names, then exit."`
	Quickstart quickstartCmd `cmd:"" help:"Create a demo PKI, a demo backend that requires the gateway's client certificate, and a gateway config; then serve them."`
	PKI        pkiCmd        `cmd:"" name:"pki" help:"Certificate authority tasks: init-ca, issue, csr, sign, crl."`
	Keystore   keystoreCmd   `cmd:"" help:"Inspect and convert keystores (PEM, PKCS#12, JKS, JCEKS)."`
	HashAPIKey hashAPIKeyCmd `cmd:"" name:"hash-api-key" help:"Print the hash of an API key for applications[].api_keys (or --generate a new key)."`
	Apply      applyCmd      `cmd:"" help:"Create, update (and with --prune delete) admin API resources to match a YAML file; --dry-run shows a diff."`
	Get        getCmd        `cmd:"" help:"List the resources of a kind, or show one, through the admin API."`
	Delete     deleteCmd     `cmd:"" help:"Delete one resource through the admin API (at the version just read)."`
	Doctor     doctorCmd     `cmd:"" help:"Diagnose TLS: doctor upstream, bypass, client, certs."`
	Version    versionCmd    `cmd:"" help:"Print the version."`
}

// exitError carries an exit code out of a command that has already told the
// user what went wrong.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Run parses args, runs the command and returns the process exit code. Only
// main calls os.Exit.
func Run(args []string, stdout, stderr io.Writer) int {
	var model cliModel
	exitCode := -1
	parser, err := kong.New(&model,
		kong.Name("portcullis"),
		kong.Description("An API gateway with mutual TLS at its centre: only the gateway can reach your APIs."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exitCode = code }),
		kong.UsageOnError(),
		kong.Bind(&globals{stdout: stdout, stderr: stderr}),
	)
	if err != nil {
		fmt.Fprintf(stderr, "portcullis: %v\n", err)
		return ExitFailure
	}
	ctx, err := parser.Parse(args)
	if exitCode >= 0 {
		// --help and friends end parsing with an exit request.
		return exitCode
	}
	if err != nil {
		fmt.Fprintf(stderr, "portcullis: %v\n", err)
		return ExitUsage
	}
	if err := ctx.Run(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		fmt.Fprintf(stderr, "portcullis: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}

type versionCmd struct{}

func (versionCmd) Run(g *globals) error {
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = " " + s.Value
			}
		}
	}
	fmt.Fprintf(g.stdout, "portcullis %s%s (%s, %s/%s)\n", Version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	switch level {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// newQuietLog discards net/http's own error log (TLS handshake failures of
// refused clients are the point of the demo, not news).
func newQuietLog() *stdlog.Logger { return stdlog.New(io.Discard, "", 0) }

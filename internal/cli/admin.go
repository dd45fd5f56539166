package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/admin"
	"github.com/portcullis/portcullis/internal/config"
	"github.com/portcullis/portcullis/internal/keymaterial"
	"github.com/portcullis/portcullis/internal/registry"
	"github.com/portcullis/portcullis/internal/trust"
)

// adminServer is the running /admin/v1 listener.
type adminServer struct {
	srv  *http.Server
	addr net.Addr
	sets []*trust.Set
}

// startAdmin serves the management API on its own TLS listener, reading its
// settings once (changing them needs a restart). Every successful write
// calls changed, which makes the gateway rebuild its snapshot.
//
// The listener also serves /metrics (Prometheus), /healthz and /readyz
// without authentication, as scrapers and orchestrators expect; it is bound
// to loopback by default for that reason. The /admin/v1 API needs a store.
func startAdmin(f config.File, configPath string, st registry.Store, log *slog.Logger, changed func(), reload func(context.Context) (int, error), metrics, health http.Handler) (*adminServer, error) {
	a := f.Admin
	base := filepath.Dir(configPath)
	file := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	secret := func(env, path string) ([]byte, error) {
		return keymaterial.ReadSecret(keymaterial.SecretRef{Env: env, File: file(path)})
	}
	var certs []tls.Certificate
	for i, c := range a.Certificates {
		src := keymaterial.IdentitySource{CertFile: file(c.Cert), KeyFile: file(c.Key)}
		var err error
		if ks := c.Keystore; ks != nil {
			src = keymaterial.IdentitySource{Keystore: file(ks.Path), Alias: ks.Alias}
			if src.Password, err = secret(ks.PasswordEnv, ks.PasswordFile); err == nil {
				src.KeyPassword, err = secret(ks.KeyPasswordEnv, ks.KeyPasswordFile)
			}
		} else {
			src.Password, err = secret(c.KeyPasswordEnv, c.KeyPasswordFile)
		}
		if err != nil {
			return nil, fmt.Errorf("admin.certificates[%d]: %w", i, err)
		}
		id, err := keymaterial.LoadIdentity(src, time.Now())
		if err != nil {
			return nil, fmt.Errorf("admin.certificates[%d]: %w", i, err)
		}
		certs = append(certs, id.Certificate)
	}
	as := &adminServer{}
	var verifiers []admin.Verifier
	for _, name := range a.ClientTrust {
		ts := f.TrustStores[name]
		src := keymaterial.TrustSource{}
		for _, p := range ts.PEM {
			src.PEMFiles = append(src.PEMFiles, file(p))
		}
		for _, s := range ts.Truststores {
			pw, err := secret(s.PasswordEnv, s.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("admin client trust %q: %w", name, err)
			}
			src.Truststores = append(src.Truststores, keymaterial.StoreRef{Path: file(s.Path), Password: pw})
		}
		set, err := keymaterial.LoadTrust(src)
		if err != nil {
			return nil, fmt.Errorf("admin client trust %q: %w", name, err)
		}
		v, err := trust.NewSet(name, set.Certs, nil)
		if err != nil {
			return nil, err
		}
		as.sets = append(as.sets, v)
		verifiers = append(verifiers, v)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.Handle("/healthz", health)
	mux.Handle("/readyz", health)
	if st != nil {
		opts := admin.Options{Store: st, Logger: log.With("component", "admin"), OnChange: changed, Check: registryCheck(configPath, st), Reload: reload}
		for _, c := range a.Clients {
			p := admin.Principal{Role: admin.Role(c.Role), Tenant: c.Tenant}
			for _, v := range verifiers {
				opts.ClientCerts = append(opts.ClientCerts, admin.ClientCertRule{Verifier: v, CN: c.CN, Fingerprint: c.Fingerprint, Principal: p})
			}
		}
		for _, t := range a.Tokens {
			opts.Tokens = append(opts.Tokens, admin.Token{Hash: t.Hash, Principal: admin.Principal{Name: t.Name, Role: admin.Role(t.Role), Tenant: t.Tenant}})
		}
		h, err := admin.New(opts)
		if err != nil {
			return nil, err
		}
		mux.Handle("/admin/", h.Handler())
	}
	ln, err := net.Listen("tcp", a.Address)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	as.addr = ln.Addr()
	as.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		TLSConfig: &tls.Config{
			Certificates: certs,
			MinVersion:   tls.VersionTLS12,
			// Verified per request by the admin package, so a bad
			// certificate gets a 401 document rather than a failed handshake.
			ClientAuth: tls.RequestClientCert,
		},
	}
	go func() {
		if err := as.srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin listener stopped", "error", err.Error())
		}
	}()
	log.Info("admin listening", "address", as.addr.String(), "loopback_only", isLoopback(as.addr))
	return as, nil
}

func isLoopback(a net.Addr) bool {
	host, _, _ := net.SplitHostPort(a.String())
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func (a *adminServer) shutdown(ctx context.Context) {
	if a == nil {
		return
	}
	_ = a.srv.Shutdown(ctx)
	for _, s := range a.sets {
		s.Close()
	}
}

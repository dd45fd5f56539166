#!/usr/bin/env bash
# Adapter for the shared benchmark harness (../shared/bench, "custom" target):
# writes a Portcullis configuration from the harness's BENCH_* variables into
# $BENCH_WORKDIR and runs the gateway in the foreground. See BENCHMARKS.md.
#   PORTCULLIS_BIN  the portcullis binary (required)
set -euo pipefail
: "${PORTCULLIS_BIN:?set PORTCULLIS_BIN to the portcullis binary}"
cfg="$BENCH_WORKDIR/gw.yaml"
client_auth=""
case "${BENCH_INBOUND:-tls}" in
  tls) ;;
  mtls) client_auth="
      client_certificates: require
      client_trust: [ bench-client-ca ]" ;;
  *) echo "custom-target.sh: unknown BENCH_INBOUND=$BENCH_INBOUND" >&2; exit 2 ;;
esac
cat > "$cfg" <<YAML
log: { level: warn, access_log: false }
shutdown_grace: 2s
listeners:
  - name: bench
    address: "$BENCH_GW_ADDR"
    tls:
      certificates: [{ cert: "$BENCH_GW_CERT", key: "$BENCH_GW_KEY" }]$client_auth
trust_stores:
  bench-ca: { pem: "$BENCH_UPSTREAM_CA" }
  bench-client-ca: { pem: "$BENCH_CLIENT_CA" }
apis:
  - name: backend
    upstream:
      targets: [ "$BENCH_UPSTREAM_URL" ]
      max_idle_conns: ${BENCH_POOL:-128}
      tls:
        client_certificate: { cert: "$BENCH_UPSTREAM_CERT", key: "$BENCH_UPSTREAM_KEY" }
        trust: bench-ca
        server_name: "$BENCH_UPSTREAM_SERVER_NAME"
YAML
exec "$PORTCULLIS_BIN" serve -c "$cfg"

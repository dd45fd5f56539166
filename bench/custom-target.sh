#!/usr/bin/env bash
# Adapter for the shared benchmark harness (../shared/bench, "custom" target):
# writes a Portcullis configuration from the harness's BENCH_* variables into
# $BENCH_WORKDIR and runs the gateway in the foreground. See BENCHMARKS.md.
#   PORTCULLIS_BIN   the portcullis binary (required)
#   BENCH_PIPELINE   "" (default): the harness scenario as specified (no access
#                    log, no authentication); "realistic": the pipeline of
#                    PERFORMANCE.md's targets, on top of the same scenario:
#                      - access log on (stdout, here $BENCH_WORKDIR/access.log);
#                      - metrics on, served by an admin listener on
#                        127.0.0.1:$BENCH_ADMIN_PORT (default 19444);
#                      - an API rate limit high enough never to refuse;
#                      - with BENCH_INBOUND=mtls: mtls authentication that maps
#                        the consumer's certificate (by fingerprint) to an
#                        application, and the verified chain forwarded to the
#                        backend in RFC 9440 Client-Cert/Client-Cert-Chain
#                        headers. (BENCH_INBOUND=tls has no client certificate
#                        to authenticate or forward: access log, metrics and
#                        rate limit only.)
set -euo pipefail
: "${PORTCULLIS_BIN:?set PORTCULLIS_BIN to the portcullis binary}"
cfg="$BENCH_WORKDIR/gw.yaml"
pipeline="${BENCH_PIPELINE:-}"
client_auth=""
case "${BENCH_INBOUND:-tls}" in
  tls) ;;
  mtls) client_auth="
      client_certificates: require
      client_trust: [ bench-client-ca ]" ;;
  *) echo "custom-target.sh: unknown BENCH_INBOUND=$BENCH_INBOUND" >&2; exit 2 ;;
esac
access_log=false admin="" applications="" api_policy=""
case "$pipeline" in
  "") ;;
  realistic)
    access_log=true
    admin="
admin:
  address: \"127.0.0.1:${BENCH_ADMIN_PORT:-19444}\"
  certificates: [{ cert: \"$BENCH_GW_CERT\", key: \"$BENCH_GW_KEY\" }]"
    api_policy="
    rate_limit: { rate: 10000000, period: 1s }"
    if [ "${BENCH_INBOUND:-tls}" = mtls ]; then
      fp="$(openssl x509 -in "$BENCH_PKI_DIR/consumer.crt" -noout -fingerprint -sha256 | cut -d= -f2)"
      applications="
applications:
  - id: bench-consumer
    certificates: [{ fingerprint: \"$fp\" }]"
      api_policy="$api_policy
    auth: mtls
    mtls: { trust: [ bench-client-ca ] }
    forward_client_cert: rfc9440"
    fi ;;
  *) echo "custom-target.sh: unknown BENCH_PIPELINE=$pipeline (want realistic or nothing)" >&2; exit 2 ;;
esac
cat > "$cfg" <<YAML
log: { level: warn, access_log: $access_log }
shutdown_grace: 2s
listeners:
  - name: bench
    address: "$BENCH_GW_ADDR"
    tls:
      certificates: [{ cert: "$BENCH_GW_CERT", key: "$BENCH_GW_KEY" }]$client_auth
trust_stores:
  bench-ca: { pem: "$BENCH_UPSTREAM_CA" }
  bench-client-ca: { pem: "$BENCH_CLIENT_CA" }$admin$applications
apis:
  - name: backend$api_policy
    upstream:
      targets: [ "$BENCH_UPSTREAM_URL" ]
      max_idle_conns: ${BENCH_POOL:-128}
      tls:
        client_certificate: { cert: "$BENCH_UPSTREAM_CERT", key: "$BENCH_UPSTREAM_KEY" }
        trust: bench-ca
        server_name: "$BENCH_UPSTREAM_SERVER_NAME"
YAML
if [ "$pipeline" = realistic ]; then
  # The access log is the gateway's stdout; its own log stays on stderr.
  exec "$PORTCULLIS_BIN" serve -c "$cfg" >"$BENCH_WORKDIR/access.log"
fi
exec "$PORTCULLIS_BIN" serve -c "$cfg"

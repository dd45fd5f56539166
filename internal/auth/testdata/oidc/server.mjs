// A real, independent OpenID provider for Portcullis's OAuth 2.0
// interoperability tests: panva's oidc-provider, configured for the
// client_credentials grant, JWT access tokens (RFC 9068) for one resource,
// opaque tokens for another, introspection, revocation and RFC 8705 mutual
// TLS (tls_client_auth and certificate-bound access tokens).
//
// The Go test (internal/auth/oidc_interop_test.go) starts it and talks to it
// over loopback only. Everything comes from the environment:
//
//   OIDC_ISSUER            issuer identifier (required), e.g. https://op.portcullis.test
//   OIDC_PORT              port on 127.0.0.1 (0 or unset: any free port)
//   OIDC_TLS_CERT          PEM server certificate (with chain) path (required)
//   OIDC_TLS_KEY           PEM private key path (required)
//   OIDC_CLIENT_CA         PEM CA path that client certificates are verified against (required)
//   OIDC_CLIENTS           JSON array of client metadata (required)
//   OIDC_AUDIENCE          the "aud" of every access token (required): the gateway's audience
//   OIDC_JWT_RESOURCE      resource indicator whose access tokens are JWTs (required)
//   OIDC_OPAQUE_RESOURCE   resource indicator whose access tokens are opaque (required)
//   OIDC_JWKS              JSON {"keys":[...]} private signing keys (optional: one ES256 key is generated)
//   OIDC_TOKEN_TTL         access token lifetime in seconds (default 300)
//   OIDC_MAX_SECONDS       hard limit on the process's life (default 600)
//
// When it listens it prints one line, {"ready":true,"port":N}, on stdout.
// It exits when its standard input closes, so it never outlives the test.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import process from 'node:process';

import Provider, { errors } from 'oidc-provider';

function required(name) {
  const v = process.env[name];
  if (!v) {
    process.stderr.write(`server.mjs: ${name} is required\n`);
    process.exit(2);
  }
  return v;
}

const issuer = required('OIDC_ISSUER');
const certPath = required('OIDC_TLS_CERT');
const keyPath = required('OIDC_TLS_KEY');
const clientCAPath = required('OIDC_CLIENT_CA');
const clients = JSON.parse(required('OIDC_CLIENTS'));
const audience = required('OIDC_AUDIENCE');
const jwtResource = required('OIDC_JWT_RESOURCE');
const opaqueResource = required('OIDC_OPAQUE_RESOURCE');
const port = Number.parseInt(process.env.OIDC_PORT || '0', 10);
const tokenTTL = Number.parseInt(process.env.OIDC_TOKEN_TTL || '300', 10);
const maxSeconds = Number.parseInt(process.env.OIDC_MAX_SECONDS || '600', 10);

// Stop when the parent goes away (stdin closes) or after the hard limit.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
setTimeout(() => {
  process.stderr.write(`server.mjs: exiting after ${maxSeconds}s\n`);
  process.exit(3);
}, maxSeconds * 1000);

let jwks;
if (process.env.OIDC_JWKS) {
  jwks = JSON.parse(process.env.OIDC_JWKS);
} else {
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  jwks = { keys: [{ ...jwk, kid: `es256-${crypto.randomUUID()}`, alg: 'ES256', use: 'sig' }] };
}

const SCOPE = 'api:read api:write';

// The TLS socket the request arrived on (Koa's ctx.req.socket).
function tlsSocket(ctx) {
  return ctx.req.socket;
}

// RFC 8705: the peer certificate of this TLS connection, or undefined. The
// certificate is requested but not required by the handshake, so clients
// using client_secret_basic connect without one.
function getCertificate(ctx) {
  const socket = tlsSocket(ctx);
  if (typeof socket.getPeerX509Certificate !== 'function') return undefined;
  return socket.getPeerX509Certificate();
}

// The handshake verified the certificate against OIDC_CLIENT_CA.
function certificateAuthorized(ctx) {
  return tlsSocket(ctx).authorized === true;
}

// Node writes a subject one attribute per line in DER order; RFC 4514 (and
// Go's pkix.Name.String) writes them most specific first, comma-separated.
function rfc4514(subject) {
  return subject.split('\n').filter(Boolean).reverse().join(',');
}

function certificateSubjectMatches(ctx, property, expected) {
  const cert = getCertificate(ctx);
  if (!cert) return false;
  switch (property) {
    case 'tls_client_auth_subject_dn':
      return rfc4514(cert.subject) === expected;
    case 'tls_client_auth_san_dns':
      return (cert.subjectAltName || '').split(', ').includes(`DNS:${expected}`);
    default:
      return false;
  }
}

async function getResourceServerInfo(_ctx, resourceIndicator) {
  switch (resourceIndicator) {
    case jwtResource:
      return {
        audience,
        scope: SCOPE,
        accessTokenTTL: tokenTTL,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      };
    case opaqueResource:
      return {
        audience,
        scope: SCOPE,
        accessTokenTTL: tokenTTL,
        accessTokenFormat: 'opaque',
      };
    default:
      throw new errors.InvalidTarget();
  }
}

const provider = new Provider(issuer, {
  clients,
  jwks,
  scopes: SCOPE.split(' '),
  clientAuthMethods: ['client_secret_basic', 'tls_client_auth'],
  clientDefaults: {
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    id_token_signed_response_alg: 'ES256',
    token_endpoint_auth_method: 'client_secret_basic',
  },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  ttl: { ClientCredentials: tokenTTL },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    mTLS: {
      enabled: true,
      certificateBoundAccessTokens: true,
      tlsClientAuth: true,
      getCertificate,
      certificateAuthorized,
      certificateSubjectMatches,
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf ?? undefined,
      useGrantedResource: async () => true,
      getResourceServerInfo,
    },
  },
});

provider.on('server_error', (_ctx, err) => {
  process.stderr.write(`server.mjs: server_error: ${err?.stack || err}\n`);
});

const server = https.createServer(
  {
    cert: fs.readFileSync(certPath),
    key: fs.readFileSync(keyPath),
    ca: fs.readFileSync(clientCAPath),
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
  },
  provider.callback(),
);

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ ready: true, port: server.address().port })}\n`);
});

// Package authserver is the gateway's built-in OAuth2 authorization server:
// it issues JWT access tokens (RFC 9068) to registered clients with the
// client_credentials grant, and serves the token endpoint, the JWKS, RFC 8414
// metadata, RFC 7662 introspection and RFC 7009 revocation.
//
// Clients authenticate with client_secret_basic, client_secret_post,
// private_key_jwt (RFC 7523, with jti replay protection),
// tls_client_auth or self_signed_tls_client_auth (RFC 8705 §2). Secrets are
// stored only as SHA-256 hashes. Tokens issued to a client that
// authenticated with a certificate carry cnf.x5t#S256 (RFC 8705 §3) when the
// client is registered with BindTokens.
//
// Tokens are signed with a gateway key (ES256 by default) that rotates on a
// schedule and on demand. The key that signs after the next rotation is
// made ahead and published in the JWKS from then on, so validators caching
// the JWKS already know it when its first token arrives. A retired key
// stays published in the JWKS, and stays usable through Keyfunc, until
// every token it signed has expired.
// Keys live in memory, or in KeyDir when they must survive a restart.
//
// Every failure fails closed: the client sees an RFC 6749 §5.2 error code
// and a sentence that never contains a secret or an assertion, and the
// operator's log gets the reason. A Server is safe for concurrent use.
package authserver

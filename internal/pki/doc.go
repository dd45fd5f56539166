// Package pki owns Portcullis's small certificate authority: it creates root
// and intermediate CAs on disk, issues server and client certificates, makes
// and signs certificate signing requests (including keytool's), keeps the CA's
// index of issued and revoked serials, publishes CRLs, and writes the results
// as PEM, PKCS#12 or JKS so that OpenSSL and the JDK's keytool accept them.
// ECDSA P-256 is the default key type because a TLS handshake signs with the
// server's key, and Go's RSA-2048 signing costs several times OpenSSL's; RSA
// is available for peers that require it. A CA directory is meant to be used
// by one process at a time: the index is updated atomically on disk, but
// concurrent writers in different processes are not coordinated.
package pki

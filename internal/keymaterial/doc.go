// Package keymaterial loads private keys, certificate chains and trust
// anchors from PEM files, PKCS#12 stores and Java keystores, detecting each
// file's format by its content (keytool writes PKCS#12 into files named
// .jks), reading passwords from environment variables or files, and checking
// what it loads (key matches certificate, certificate within its validity) so
// that a bad credential fails at load time with an error that names the file,
// the alias and the fix but never a secret.
package keymaterial

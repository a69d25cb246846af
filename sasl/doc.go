// Package sasl holds the SASL mechanisms popa3d's AUTH command speaks
// (RFC 5034): PLAIN (RFC 4616) and SCRAM-SHA-256 with and without channel
// binding (RFC 7677, RFC 5802; tls-exporter, RFC 9266, and
// tls-server-end-point, RFC 5929), and the string preparation of user names
// and passwords (PRECIS, RFC 8265, the successor of SASLprep). It parses
// untrusted client messages, holds no connection and knows nothing of
// accounts: a mechanism is fed one client message at a time and asks its
// caller for the stored secret.
package sasl

// Package proxy takes the client's address from the PROXY protocol header
// (v1 and v2, as HAProxy and most load balancers send it) that starts a
// connection to a listen_proxy listener, accepted only from proxy_trusted
// networks (doc/design.md §14.4).
//
// The header is parsed by github.com/pires/go-proxyproto. This package adds
// only what the library leaves to its caller: the framing that tells when a
// header is complete, reading exactly the header and not a byte of the POP3
// stream after it (MSG_PEEK, then a read of exactly its length, so that the
// socket can be handed to another process with the session's bytes still in
// it), the trust and time bounds, and, for privilege separation, a jailed
// helper process that reads the header of each connection it is handed so
// that no root process parses network input (Helper, ServeHelper).
package proxy

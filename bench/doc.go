// Package bench holds end-to-end benchmarks of the protocol engine and the mbox
// backend together over real loopback TCP: RETR throughput with one command at
// a time (as fetchmail, curl and getmail send them) and with several in flight.
// It has no code of its own.
package bench

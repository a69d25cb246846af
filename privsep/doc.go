// Package privsep runs POP3 sessions for system accounts with popa3d's
// privilege separation (doc/design.md §5 and §6; doc/popa3d-compat.md §2):
//
//   - the session process starts as root, one per connection (started by
//     inetd, or by the daemon exactly as inetd would);
//   - it re-executes the program in the pre-auth role, with the client on the
//     child's standard input and output and a pipe as fd 3; the child chroots
//     into an empty directory and becomes the pre-auth account before it reads
//     a byte, runs AUTHORIZATION, and writes one bounded record (user,
//     password, pipelined input) to the pipe;
//   - root reads that record as untrusted input, verifies the password, and
//     on success takes the session lock, becomes the user for good (primary
//     group, plus the mail group only if configured) and serves TRANSACTION
//     with the user's rights; on any failure it first enters the same jail as
//     the pre-auth process, then answers.
//
// Under -D the daemon (root, reading no client byte) starts each session
// process with Spawn, and learns what the session did from its report pipe
// (below).
//
// Go cannot fork without exec, hence the re-execution; the caller supplies
// the command that does it. Every role first closes the descriptors it
// inherited and was not handed (CloseInherited); the jailed processes can
// start no process and gain nothing from an exec (Jail.Enter).
//
// # The hand-off and the relay
//
// The record also says which connection the session goes on on (its mode):
//
//   - direct, the default and the mode of every plaintext session: the
//     pre-auth process exits after writing the record, and root's session
//     process serves the rest of the session on the client's socket, which
//     it holds as well. Nothing is copied.
//   - relayed (Runner.Relay, set when TLS is configured; used by sessions
//     under TLS, since TLS state cannot be handed over): before it starts the pre-auth process, root creates a
//     socket pair (AF_UNIX, stream) and passes one end to it as fd 4, the
//     relay channel, announced as POPA3D_RELAY_FD=4 in its environment
//     (without that, fd 4 is just the next free descriptor). The pre-auth
//     process writes a record marked relayed, closes fd 3 (root reads to its
//     end) and stays, chrooted and unprivileged, copying bytes between the
//     client and the channel. Root points its standard input and output (the
//     client) at /dev/null, never makes a connection of them, and serves the
//     session on its end of the channel: root never reads or writes a byte
//     of the client's connection. A relayed record without a channel is
//     refused; a direct record when a channel was offered means the pre-auth
//     process chose the client's socket (a plaintext session once TLS is
//     optional), and root closes its end.
//
// The relay reads and writes the client's socket and the channel with RawIO
// (raw system calls on the non-blocking sockets, readiness from the
// runtime's poller), as root's session process does its end of the channel:
// an ordinary system call after an idle spell wakes the runtime's monitor
// thread, which cost the relay more CPU than copying and encrypting
// (doc/design.md §14.6).
//
// The relay's lifetime: it ends when both directions are done. The client's
// end of input is passed on as a half-close of the channel (the session sees
// end of input, as it would on the socket); the end of the session (root
// closes its end) is passed on as a half-close of the client's connection,
// after which the relay reads what the client still sends for at most
// limits.LingerTime, as daemon.CloseGently does. Any error ends both directions.
//
// Its deadlines: each write, to the client or to the channel, must complete
// within the session's write timeout; and the relay ends when no byte has
// moved either way for the session's idle timeout plus relaySlack, so that
// the session, which times out first, ends it in the ordinary way. Nothing
// in it can block for ever.
//
// Its shutdown: SIGTERM (the context) ends both directions at once. When
// the session is over, or root is shut down just after a relayed record,
// root's session process closes its end of the channel and waits up to
// exitWait for the relay to exit; one that has not is killed if root still
// can (a session that failed its login runs as the jail's account), or else
// by its parent-death signal when the session process exits a moment later
// (a logged-in session runs as the user, who may not signal the jail's
// account).
//
// # The report pipe
//
// With Spawn.Reported, the -D daemon creates a pipe per session and hands
// the session process its write end as fd 3, announced as POPA3D_REPORT_FD=3
// in its environment (without that, fd 3 is just the next free descriptor;
// SessionDescriptors keeps it through CloseInherited, ReportPipe opens it).
// Both ends are close-on-exec in the daemon, and CloseInherited makes fd 3
// close-on-exec in the session process, so neither the pre-auth process (whose
// fd 3 is its credentials pipe) nor any other process gets it. The session
// process writes, as root, a login record as soon as root has verified the
// credentials (Runner.LoginDecided, before the drop or the jail), then one
// fixed-size record of its summary (report.Writer as the pop3.Server's
// observer: after a good or a failed login; the program reports a record
// without a login itself when the client never sent PASS) and exits. The
// daemon reads the pipe while the process runs (report.ReadStream: at most
// one login record, handed to Spawn.Login at once, then one summary), and for
// at most reportWait after it exited; every record is checked as untrusted
// input (after the login the writer runs as the user). A missing or bad
// record (a killed session) counts as nothing.
package privsep

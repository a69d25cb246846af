package auth

import (
	"context"

	"github.com/popa3d/popa3d/sasl"
)

// SCRAMSource is implemented by a backend that can supply SCRAM-SHA-256
// verifiers (RFC 5802, RFC 7677): the password file does, for entries that
// hold one. It is optional beside Authenticator; the engine offers
// SCRAM-SHA-256 only when the session's Authenticator implements it and
// HasSCRAM holds.
type SCRAMSource interface {
	// HasSCRAM reports whether any account has a SCRAM-SHA-256 verifier now.
	HasSCRAM() bool
	// SCRAMSHA256 returns user's verifier and the identity a valid proof
	// logs in as. For a name that is not an account, a locked account, or
	// one whose entry holds another kind of hash, it returns a fake
	// verifier that no proof matches, with the salt and iteration count a
	// real one would show (the same for the same name for the life of the
	// process), and a refusal: an *auth.Failure, as Authenticate would
	// return, that the engine reports once the exchange has failed, so that
	// the exchange does not tell whether the account exists. Any other
	// error means the lookup could not be made.
	SCRAMSHA256(ctx context.Context, user string) (sasl.Credential, Identity, error)
}

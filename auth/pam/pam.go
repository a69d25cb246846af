//go:build cgo

package pam

/*
#cgo LDFLAGS: -lpam
#include <security/pam_appl.h>
#include <stdlib.h>
#include <string.h>

struct p3_creds {
	const char *user;
	const char *pass;
};

static void p3_free_responses(struct pam_response *r, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		if (r[i].resp != NULL) {
			explicit_bzero(r[i].resp, strlen(r[i].resp));
			free(r[i].resp);
		}
	}
	free(r);
}

// p3_conv answers echo-on prompts with the user name and echo-off prompts
// with the password, and ignores messages. The responses are malloc'd: PAM
// frees them.
static int p3_conv(int n, const struct pam_message **msg, struct pam_response **resp, void *appdata)
{
	const struct p3_creds *c = appdata;
	struct pam_response *r;
	int i;

	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	r = calloc((size_t)n, sizeof *r);
	if (r == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < n; i++) {
		const char *answer;

		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_ON:
			answer = c->user;
			break;
		case PAM_PROMPT_ECHO_OFF:
			answer = c->pass;
			break;
		case PAM_ERROR_MSG:
		case PAM_TEXT_INFO:
			continue;
		default:
			p3_free_responses(r, n);
			return PAM_CONV_ERR;
		}
		r[i].resp = strdup(answer);
		if (r[i].resp == NULL) {
			p3_free_responses(r, n);
			return PAM_BUF_ERR;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

// p3_no_delay replaces the delay modules ask for after a failure.
static void p3_no_delay(int retval, unsigned usec_delay, void *appdata)
{
	(void)retval;
	(void)usec_delay;
	(void)appdata;
}

// Steps of p3_login, for messages.
enum { P3_START, P3_SET_ITEM, P3_AUTHENTICATE, P3_ACCT_MGMT, P3_GET_USER };

// p3_login runs service's auth and account stacks for user and pass, with
// PAM_RHOST set to rhost unless it is NULL. It
// returns the PAM status of the step *step; on success *user_out is the final
// PAM_USER, malloc'd.
static int p3_login(const char *service, const char *user, const char *pass, const char *rhost,
		    int *step, char **user_out)
{
	struct p3_creds creds = { user, pass };
	struct pam_conv conv = { p3_conv, &creds };
	pam_handle_t *h = NULL;
	const void *item = NULL;
	int rc;

	*user_out = NULL;
	*step = P3_START;
	rc = pam_start(service, user, &conv, &h);
	if (rc != PAM_SUCCESS)
		return rc;
	*step = P3_SET_ITEM;
	rc = pam_set_item(h, PAM_FAIL_DELAY, (const void *)p3_no_delay);
	if (rc == PAM_SUCCESS && rhost != NULL)
		rc = pam_set_item(h, PAM_RHOST, rhost);
	if (rc == PAM_SUCCESS) {
		*step = P3_AUTHENTICATE;
		rc = pam_authenticate(h, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	}
	if (rc == PAM_SUCCESS) {
		*step = P3_ACCT_MGMT;
		rc = pam_acct_mgmt(h, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	}
	if (rc == PAM_SUCCESS) {
		*step = P3_GET_USER;
		rc = pam_get_item(h, PAM_USER, &item);
		if (rc == PAM_SUCCESS && item == NULL)
			rc = PAM_USER_UNKNOWN;
		if (rc == PAM_SUCCESS && (*user_out = strdup(item)) == NULL)
			rc = PAM_BUF_ERR;
	}
	pam_end(h, rc);
	return rc;
}

static void p3_wipe_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/auth/system"
)

// Authenticator verifies passwords through PAM; it implements
// auth.Authenticator. It is safe for concurrent use; its PAM calls are made
// one at a time.
type Authenticator struct {
	service string
	rule    system.MailboxRule
	// turn holds a token while a PAM call runs: a mutex that a context can
	// give up waiting for.
	turn chan struct{}
}

var _ auth.Authenticator = (*Authenticator)(nil)

// New checks the options. It does not open the PAM service: a service with
// no file of its own gets PAM's "other" policy, at the first login.
func New(opts Options) (*Authenticator, error) {
	service := opts.Service
	if service == "" {
		service = DefaultService
	}
	if strings.ContainsAny(service, "/\x00") || service == "." || service == ".." {
		return nil, fmt.Errorf("pam: service name %q: not a file name in /etc/pam.d", service)
	}
	rule, err := system.NewMailboxRule(opts.Mailbox)
	if err != nil {
		return nil, fmt.Errorf("pam: %w", err)
	}
	return &Authenticator{service: service, rule: rule, turn: make(chan struct{}, 1)}, nil
}

// steps names the steps of p3_login.
var steps = [...]string{
	C.P3_START:        "pam_start",
	C.P3_SET_ITEM:     "pam_set_item",
	C.P3_AUTHENTICATE: "pam_authenticate",
	C.P3_ACCT_MGMT:    "pam_acct_mgmt",
	C.P3_GET_USER:     "pam_get_item(PAM_USER)",
}

// refusals are the PAM results that say no to the user, as opposed to PAM
// failing: they wrap auth.ErrFailed.
var refusals = map[C.int]bool{
	C.PAM_AUTH_ERR:          true,
	C.PAM_CRED_INSUFFICIENT: true,
	C.PAM_AUTHINFO_UNAVAIL:  true, // pam_unix, for a user its sources cannot find
	C.PAM_USER_UNKNOWN:      true,
	C.PAM_MAXTRIES:          true,
	C.PAM_ACCT_EXPIRED:      true,
	C.PAM_NEW_AUTHTOK_REQD:  true, // a password that must be changed: POP3 cannot
	C.PAM_AUTHTOK_EXPIRED:   true,
	C.PAM_PERM_DENIED:       true,
}

// Authenticate runs the PAM service's auth and account stacks for user and
// password, then looks up the account PAM settled on (the final PAM_USER,
// which a module may have changed) and refuses it if its uid is 0. A failure
// wraps auth.ErrFailed, and also auth.ErrUnknownUser if user was not an
// account before PAM ran (PAM itself does not say, and the PAM call runs
// all the same). pam_unix refuses an unknown user without hashing anything,
// so a refusal's time here tells whether the account exists: the caller
// hides it (pop3 sends every failed login's reply at a fixed time after the
// PASS, whatever the verification cost). An error that does not wrap
// auth.ErrFailed means PAM or the
// account database failed, or PAM accepted a user that is not an account or
// whose mailbox cannot be named; it is for the log, and the client should
// be told to try later. ctx is honoured until the PAM call starts, which
// cannot be interrupted.
func (a *Authenticator) Authenticate(ctx context.Context, user, password string) (auth.Identity, error) {
	if err := ctx.Err(); err != nil {
		return auth.Identity{}, &auth.Failure{Cause: auth.ErrFailed, Err: err}
	}
	// Only for the log: PAM does not tell an unknown user from a wrong
	// password.
	var cause error = auth.ErrFailed
	if _, err := system.Lookup(user); errors.Is(err, auth.ErrUnknownUser) {
		cause = auth.Unknown()
	}
	switch {
	case user == "" || strings.IndexByte(user, 0) >= 0:
		return auth.Identity{}, &auth.Failure{Cause: auth.Unknown(), Detail: "empty user name or NUL byte in it"}
	case password == "":
		// popa3d refuses it even where PAM would not (pam_unix nullok).
		return auth.Identity{}, &auth.Failure{Cause: cause, Detail: "empty password"}
	case strings.IndexByte(password, 0) >= 0:
		return auth.Identity{}, &auth.Failure{Cause: cause, Detail: "NUL byte in the password"}
	}

	select {
	case a.turn <- struct{}{}:
	case <-ctx.Done():
		return auth.Identity{}, &auth.Failure{Cause: auth.ErrFailed, Err: ctx.Err()}
	}
	final, rc, step := a.login(user, password, remoteHost(ctx))
	<-a.turn

	if rc != C.PAM_SUCCESS {
		msg := steps[step] + ": " + C.GoString(C.pam_strerror(nil, rc))
		if refusals[rc] {
			return auth.Identity{}, &auth.Failure{Cause: cause, Detail: msg}
		}
		return auth.Identity{}, fmt.Errorf("pam service %s: %s", a.service, msg)
	}
	id, err := system.Lookup(final)
	if err != nil {
		return auth.Identity{}, fmt.Errorf("pam service %s accepted %q: %w", a.service, final, err)
	}
	if id.UID == 0 {
		return auth.Identity{}, &auth.Failure{Cause: auth.ErrFailed, Detail: "uid 0 is refused"}
	}
	if id.Mailbox, err = a.rule.Path(id); err != nil {
		return auth.Identity{}, fmt.Errorf("pam: %w", err)
	}
	return id, nil
}

// login runs p3_login; the password's C copy is wiped after. An empty rhost
// is not set.
func (a *Authenticator) login(user, password, rhost string) (final string, rc C.int, step C.int) {
	cservice := C.CString(a.service)
	defer C.free(unsafe.Pointer(cservice))
	cuser := C.CString(user)
	defer C.free(unsafe.Pointer(cuser))
	cpass := C.CString(password)
	defer C.p3_wipe_free(cpass)
	var crhost *C.char
	if rhost != "" {
		crhost = C.CString(rhost)
		defer C.free(unsafe.Pointer(crhost))
	}
	var out *C.char
	rc = C.p3_login(cservice, cuser, cpass, crhost, &step, &out)
	if out != nil {
		final = C.GoString(out)
		C.free(unsafe.Pointer(out))
	}
	return final, rc, step
}

//go:build cgo

#include <crypt.h>
#include <errno.h>
#include <pwd.h>
#include <shadow.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "p3system.h"

// Buffer sizes for getpwnam_r and getspnam_r: start small, double on ERANGE
// up to a bound, so that a broken NSS module cannot make us allocate without
// end.
#define P3_BUF_START 1024
#define P3_BUF_MAX (1 << 20)

static void wipe_free(void *p, size_t n)
{
	if (p == NULL)
		return;
	explicit_bzero(p, n);
	free(p);
}

int p3_getpw(const char *name, struct p3_account *a)
{
	struct passwd *res = NULL;
	size_t len = P3_BUF_START;
	long max = sysconf(_SC_GETPW_R_SIZE_MAX);
	int e;

	if (max > 0 && (size_t)max > len && max <= P3_BUF_MAX)
		len = (size_t)max;
	memset(a, 0, sizeof *a);
	for (;;) {
		char *buf = malloc(len);
		if (buf == NULL)
			return ENOMEM;
		e = getpwnam_r(name, &a->pw, buf, len, &res);
		if (e == ERANGE && len < P3_BUF_MAX) {
			wipe_free(buf, len);
			len *= 2;
			continue;
		}
		if (e != 0 || res == NULL) {
			wipe_free(buf, len);
			memset(&a->pw, 0, sizeof a->pw);
			// getpwnam_r(3): "0 or ENOENT or ESRCH or EBADF or EPERM
			// or ...: the given name or uid was not found".
			if (e == 0 || e == ENOENT || e == ESRCH || e == EBADF || e == EPERM)
				return P3_NOT_FOUND;
			return e;
		}
		a->buf = buf;
		a->len = len;
		return P3_FOUND;
	}
}

void p3_account_free(struct p3_account *a)
{
	// The buffer holds pw_passwd, a hash on systems without shadow.
	wipe_free(a->buf, a->len);
	memset(a, 0, sizeof *a);
}

// getsp looks name up in the shadow database. It returns P3_FOUND with the
// entry in *sp and its buffer in *buf (wipe_free it with *len), P3_NOT_FOUND,
// or an errno.
static int getsp(const char *name, struct spwd *sp, char **buf, size_t *len)
{
	struct spwd *res = NULL;
	size_t n = P3_BUF_START;
	int e;

	*buf = NULL;
	*len = 0;
	for (;;) {
		char *b = malloc(n);
		if (b == NULL)
			return ENOMEM;
		e = getspnam_r(name, sp, b, n, &res);
		if (e == ERANGE && n < P3_BUF_MAX) {
			wipe_free(b, n);
			n *= 2;
			continue;
		}
		if (e != 0 || res == NULL) {
			wipe_free(b, n);
			explicit_bzero(sp, sizeof *sp);
			if (e == 0 || e == ENOENT)
				return P3_NOT_FOUND;
			return e;
		}
		*buf = b;
		*len = n;
		return P3_FOUND;
	}
}

// equal compares two strings in time that depends on their lengths only.
static int equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i;
	volatile unsigned char d = 0;

	if (la != lb)
		return 0;
	for (i = 0; i < la; i++)
		d |= (unsigned char)a[i] ^ (unsigned char)b[i];
	return d == 0;
}

// run_crypt runs crypt(3) on phrase with setting, in a crypt_data of its own
// on the heap (crypt_rn is thread-safe that way), which it wipes after. If
// want is not NULL it compares the result with want. It returns 1 for a match,
// 0 for no match or no want, -1 if crypt failed and -2 without memory.
static int run_crypt(const char *phrase, const char *setting, const char *want)
{
	struct crypt_data *cd;
	const char *out;
	int r;

	cd = calloc(1, sizeof *cd);
	if (cd == NULL)
		return -2;
	out = crypt_rn(phrase, setting, cd, sizeof *cd);
	if (out == NULL || out[0] == '*')
		r = -1;
	else if (want == NULL)
		r = 0;
	else
		r = equal(out, want);
	// The output is inside cd.
	explicit_bzero(cd, sizeof *cd);
	free(cd);
	return r;
}

static int usable(const char *hash)
{
	return hash != NULL && hash[0] != '\0' && hash[0] != '!' && hash[0] != '*';
}

// p3_check verifies phrase for the account name, whose passwd entry has the
// password field pwfield. The hash is the shadow entry's, or pwfield if there
// is none. If use_hash is 0, or the hash is locked, or the shadow database
// cannot be read, it runs crypt(3) with the setting dummy instead so that
// every call costs the same. If name is NULL it only runs the dummy.
// *cost says which it ran.
int p3_check(const char *name, const char *pwfield, const char *phrase, const char *dummy,
	     int use_hash, int *err, int *cost)
{
	struct spwd sp;
	char *spbuf = NULL;
	size_t splen = 0;
	const char *hash = NULL;
	int status, r, noshadow = 0;

	*err = 0;
	*cost = P3_COST_NONE;
	if (name != NULL) {
		// Also for an unknown name, so that its time matches.
		r = getsp(name, &sp, &spbuf, &splen);
		if (r == P3_FOUND)
			hash = sp.sp_pwdp;
		else if (r == P3_NOT_FOUND && pwfield != NULL && strcmp(pwfield, "x") == 0)
			// The entry should be in shadow: the database may be
			// unreadable, which glibc reports as not found.
			noshadow = 1;
		else if (r == P3_NOT_FOUND)
			hash = pwfield;
		else
			*err = r;
	}
	if (!use_hash)
		status = P3_NOT_CHECKED;
	else if (*err != 0)
		status = P3_SHADOW_ERROR;
	else if (noshadow)
		status = P3_NO_SHADOW;
	else if (!usable(hash))
		status = P3_LOCKED;
	else
		status = P3_MATCH; // for now

	if (status == P3_MATCH) {
		*cost = P3_COST_HASH;
		r = run_crypt(phrase, hash, hash);
		if (r == 1)
			status = P3_MATCH;
		else if (r == 0)
			status = P3_MISMATCH;
		else if (r == -1)
			status = P3_CRYPT_FAILED;
		else
			status = P3_NO_MEMORY;
	} else {
		*cost = P3_COST_DUMMY;
		if (run_crypt(phrase, dummy, NULL) == -2 && status != P3_SHADOW_ERROR)
			status = P3_NO_MEMORY;
	}
	if (spbuf != NULL) {
		wipe_free(spbuf, splen);
		explicit_bzero(&sp, sizeof sp);
	}
	return status;
}

int p3_gensalt(const char *prefix, char *out)
{
	errno = 0;
	if (crypt_gensalt_rn(prefix, 0, NULL, 0, out, CRYPT_GENSALT_OUTPUT_SIZE) == NULL ||
	    out[0] == '*')
		return errno ? errno : EINVAL;
	return 0;
}

char *p3_hash(const char *phrase, const char *prefix, int *err)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;
	const char *out;
	char *res = NULL;

	*err = p3_gensalt(prefix, setting);
	if (*err != 0)
		return NULL;
	cd = calloc(1, sizeof *cd);
	if (cd == NULL) {
		*err = ENOMEM;
		return NULL;
	}
	errno = 0;
	out = crypt_rn(phrase, setting, cd, sizeof *cd);
	if (out == NULL || out[0] == '*')
		*err = errno ? errno : EINVAL;
	else if ((res = strdup(out)) == NULL)
		*err = ENOMEM;
	explicit_bzero(cd, sizeof *cd);
	free(cd);
	return res;
}

void p3_wipe_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

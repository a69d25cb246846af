// C side of package system: account lookup and crypt(3), kept in C so that
// password hashes never reach Go memory, where they could not be wiped.

#ifndef P3SYSTEM_H
#define P3SYSTEM_H

#include <pwd.h>
#include <stddef.h>

// p3_account is a passwd entry with the buffer its strings live in.
struct p3_account {
	struct passwd pw;
	char *buf;
	size_t len;
};

// Results of p3_getpw.
enum { P3_FOUND = 0, P3_NOT_FOUND = -1 };

// Results of p3_check.
enum {
	P3_MATCH = 0,      // the password is right
	P3_MISMATCH,       // the password is wrong
	P3_LOCKED,         // the hash is empty, '!…' or '*…'
	P3_NO_SHADOW,      // the passwd field is "x" but there is no shadow entry
	P3_CRYPT_FAILED,   // crypt(3) refused the hash
	P3_SHADOW_ERROR,   // getspnam_r failed; *err is its errno
	P3_NO_MEMORY,
	P3_NOT_CHECKED     // the caller asked for the dummy only
};

// What p3_check computed, for the tests.
enum { P3_COST_NONE = 0, P3_COST_HASH, P3_COST_DUMMY };

int p3_getpw(const char *name, struct p3_account *a);
void p3_account_free(struct p3_account *a);
int p3_check(const char *name, const char *pwfield, const char *phrase, const char *dummy,
	     int use_hash, int *err, int *cost);
int p3_gensalt(const char *prefix, char *out);
char *p3_hash(const char *phrase, const char *prefix, int *err);
void p3_wipe_free(char *s);

#endif

/*
 * auth.c: tokens file, hashing, constant-time matching, and the authentication of a call
 * (its role, from the transport and the token). See auth.h.
 */
#include "auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hex.h"

struct token_entry {
	enum role role;
	char id[64];
	unsigned char hash[SHA256_DIGEST_LENGTH];
};

struct auth {
	char *path; /* NULL: no tokens file */
	pthread_rwlock_t lock;
	struct token_entry *entries;
	size_t n;
};

enum role
role_parse(const char *s)
{
	if (strcmp(s, "admin") == 0)
		return ROLE_ADMIN;
	if (strcmp(s, "reader") == 0)
		return ROLE_READER;
	return ROLE_NONE;
}

const char *
role_str(enum role r)
{
	switch (r) {
	case ROLE_READER:
		return "reader";
	case ROLE_ADMIN:
		return "admin";
	default:
		return "none";
	}
}

void
auth_hash_token(const char *token, char *hex)
{
	unsigned char h[SHA256_DIGEST_LENGTH];

	(void)SHA256((const unsigned char *)token, strlen(token), h);
	sd_hex_encode(h, sizeof(h), hex);
	hex[2 * sizeof(h)] = '\0';
	explicit_bzero(h, sizeof(h));
}

/* Read and parse the file into a fresh array. */
static enum status
load_file(const char *path, struct token_entry **entriesp, size_t *np, char *err, size_t errlen)
{
	FILE *f = NULL;
	struct stat sb;
	struct token_entry *entries = NULL;
	size_t n = 0;
	size_t cap = 0;
	char line[512];
	unsigned lineno = 0;
	enum status st = ST_INVALID_ARGUMENT;

	f = fopen(path, "re");
	if (f == NULL) {
		(void)snprintf(
		    err, errlen, "cannot open tokens file %s: %s", path, strerror(errno));
		st = ST_FAILED_PRECONDITION;
		goto fail;
	}
	if (fstat(fileno(f), &sb) != 0 || (sb.st_mode & 022) != 0) {
		(void)snprintf(err, errlen,
		    "tokens file %s is writable by group or others; chmod 600 it", path);
		st = ST_FAILED_PRECONDITION;
		goto fail;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char role[16];
		char id[64];
		char hex[AUTH_HASH_HEX + 2];
		struct token_entry *e;
		int fields;

		lineno++;
		if (line[0] == '#' || line[strspn(line, " \t\r\n")] == '\0')
			continue;
		fields = sscanf(line, "%15s %63s %65s", role, id, hex);
		if (fields != 3 || role_parse(role) == ROLE_NONE || strlen(hex) != AUTH_HASH_HEX) {
			(void)snprintf(err, errlen,
			    "tokens file %s line %u: expected `reader|admin <id> <sha256 hex>`",
			    path, lineno);
			goto fail;
		}
		if (n == cap) {
			size_t ncap = cap == 0 ? 8 : cap * 2;
			struct token_entry *ne = realloc(entries, ncap * sizeof(*ne));

			if (ne == NULL) {
				(void)snprintf(err, errlen, "out of memory");
				st = ST_RESOURCE_EXHAUSTED;
				goto fail;
			}
			entries = ne;
			cap = ncap;
		}
		e = &entries[n];
		e->role = role_parse(role);
		(void)snprintf(e->id, sizeof(e->id), "%s", id);
		if (!sd_hex_decode(hex, SHA256_DIGEST_LENGTH, e->hash)) {
			(void)snprintf(err, errlen, "tokens file %s line %u: the hash is not hex",
			    path, lineno);
			goto fail;
		}
		n++;
	}
	if (ferror(f)) {
		(void)snprintf(err, errlen, "cannot read tokens file %s", path);
		st = ST_FAILED_PRECONDITION;
		goto fail;
	}
	(void)fclose(f);
	*entriesp = entries;
	*np = n;
	return ST_OK;
fail:
	if (f != NULL)
		(void)fclose(f);
	free(entries);
	return st;
}

enum status
auth_open(const char *path, struct auth **authp, char *err, size_t errlen)
{
	struct auth *a = calloc(1, sizeof(*a));
	enum status st;

	if (a == NULL) {
		(void)snprintf(err, errlen, "out of memory");
		return ST_RESOURCE_EXHAUSTED;
	}
	if (pthread_rwlock_init(&a->lock, NULL) != 0) {
		free(a);
		(void)snprintf(err, errlen, "cannot create a lock");
		return ST_INTERNAL;
	}
	if (path != NULL) {
		a->path = strdup(path);
		if (a->path == NULL) {
			auth_free(a);
			(void)snprintf(err, errlen, "out of memory");
			return ST_RESOURCE_EXHAUSTED;
		}
		st = load_file(path, &a->entries, &a->n, err, errlen);
		if (st != ST_OK) {
			auth_free(a);
			return st;
		}
	}
	*authp = a;
	return ST_OK;
}

enum status
auth_reload(struct auth *a, char *err, size_t errlen)
{
	struct token_entry *entries = NULL;
	struct token_entry *old;
	size_t n = 0;
	enum status st;

	if (a->path == NULL)
		return ST_OK;
	st = load_file(a->path, &entries, &n, err, errlen);
	if (st != ST_OK)
		return st;
	(void)pthread_rwlock_wrlock(&a->lock);
	old = a->entries;
	a->entries = entries;
	a->n = n;
	(void)pthread_rwlock_unlock(&a->lock);
	free(old);
	return ST_OK;
}

void
auth_free(struct auth *a)
{
	if (a == NULL)
		return;
	(void)pthread_rwlock_destroy(&a->lock);
	free(a->entries);
	free(a->path);
	free(a);
}

size_t
auth_count(struct auth *a)
{
	size_t n;

	if (a == NULL)
		return 0;
	(void)pthread_rwlock_rdlock(&a->lock);
	n = a->n;
	(void)pthread_rwlock_unlock(&a->lock);
	return n;
}

enum role
auth_check(struct auth *a, const char *token, char *id, size_t idlen)
{
	unsigned char h[SHA256_DIGEST_LENGTH];
	enum role role = ROLE_NONE;
	size_t match = 0;

	if (idlen > 0)
		id[0] = '\0';
	if (a == NULL || token == NULL || token[0] == '\0')
		return ROLE_NONE;
	(void)SHA256((const unsigned char *)token, strlen(token), h);
	(void)pthread_rwlock_rdlock(&a->lock);
	/* Compare against every entry, always, with CRYPTO_memcmp: the time taken does not
	 * depend on which entry (if any) matched. */
	for (size_t i = 0; i < a->n; i++) {
		if (CRYPTO_memcmp(h, a->entries[i].hash, sizeof(h)) == 0) {
			role = a->entries[i].role;
			match = i;
		}
	}
	if (role != ROLE_NONE && idlen > 0)
		(void)snprintf(id, idlen, "%s", a->entries[match].id);
	(void)pthread_rwlock_unlock(&a->lock);
	explicit_bzero(h, sizeof(h));
	return role;
}

void
auth_authenticate(struct auth *a, struct caller *caller, const char *token)
{
	caller->token_id[0] = '\0';
	caller->role = caller->transport_role;
	if (token != NULL && token[0] != '\0')
		caller->role = auth_check(a, token, caller->token_id, sizeof(caller->token_id));
}

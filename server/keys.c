/*
 * keys.c: opening with a key file, and crash-safe rotation. See keys.h.
 */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "path.h"

/* "<key_path>.new" into buf; false when it does not fit. */
static bool
new_path(const char *key_path, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s.new", key_path);

	return n > 0 && (size_t)n < len;
}

store_status
keys_open_store(const char *key_path, struct store_config *cfg, uint8_t *key, struct store **storep,
    const char **notep)
{
	uint8_t next[STORE_KEY_LEN];
	char pending[SD_PATH_SUFFIX_BUF];
	bool created = false;
	store_status st;

	if (notep != NULL)
		*notep = NULL;
	if (!new_path(key_path, pending, sizeof(pending)))
		return STORE_INVALID;
	/* A database without its key file: refuse rather than make a new key that cannot
	 * open it (and that would then stand in the missing file's place). */
	if (access(key_path, F_OK) != 0 && errno == ENOENT && access(cfg->path, F_OK) == 0 &&
	    access(pending, F_OK) != 0)
		return STORE_NOT_FOUND;
	st = store_keyfile_load(key_path, true, key, &created);
	if (st != STORE_OK)
		return st;
	if (created && notep != NULL)
		*notep = "created a new random key";
	cfg->key = key;
	cfg->key_len = STORE_KEY_LEN;
	st = store_open(&store_sqlcipher_ops, cfg, storep);
	if (access(pending, F_OK) != 0)
		return st;
	/* A rotation was interrupted. */
	if (st == STORE_OK) {
		/* It never committed: the old key still opens the database. */
		(void)unlink(pending);
		if (notep != NULL)
			*notep = "discarded an interrupted key rotation (old key still valid)";
		return STORE_OK;
	}
	if (st != STORE_BAD_KEY)
		return st;
	st = store_keyfile_load(pending, false, next, NULL);
	if (st != STORE_OK)
		goto out;
	cfg->key = next;
	st = store_open(&store_sqlcipher_ops, cfg, storep);
	cfg->key = key;
	if (st != STORE_OK)
		goto out;
	/* It committed: make the new key file the key file. */
	if (store_keyfile_rename(pending, key_path) != STORE_OK) {
		store_close(*storep);
		*storep = NULL;
		st = STORE_IO;
		goto out;
	}
	memcpy(key, next, STORE_KEY_LEN);
	if (notep != NULL)
		*notep = "finished an interrupted key rotation (new key in place)";
out:
	explicit_bzero(next, sizeof(next));
	return st;
}

store_status
keys_rotate(struct store *st, const char *key_path, uint8_t *key, keys_step_fn after_step)
{
	uint8_t next[STORE_KEY_LEN];
	char pending[SD_PATH_SUFFIX_BUF];
	store_status rc;

	if (!new_path(key_path, pending, sizeof(pending)))
		return STORE_INVALID;
	if (getrandom(next, sizeof(next), 0) != (ssize_t)sizeof(next))
		return STORE_IO;
	/* 1. the new key, durable, beside the old one */
	rc = store_keyfile_write(pending, next);
	if (rc != STORE_OK)
		goto out;
	if (after_step != NULL)
		after_step("new-key");
	/* 2. the database under the new key, in one transaction */
	rc = store_rekey(st, next, sizeof(next));
	if (rc != STORE_OK) {
		/* sqlcipher's rekey is one transaction: nothing is under the new key. A shared
		 * store (etcd) re-seals value by value: keep the new key, the next start
		 * finishes the rotation. */
		if (strcmp(store_name(st), "sqlcipher") == 0)
			(void)unlink(pending);
		goto out;
	}
	if (after_step != NULL)
		after_step("rekey");
	/* 3. the new key file in place of the old; a crash before this is finished at the
	 * next start by keys_open_store */
	if (store_keyfile_rename(pending, key_path) != STORE_OK) {
		rc = STORE_IO;
		memcpy(key, next, STORE_KEY_LEN);
		goto out;
	}
	memcpy(key, next, STORE_KEY_LEN);
out:
	explicit_bzero(next, sizeof(next));
	return rc;
}

store_status
keys_passphrase_read(const char *path, uint8_t *buf, size_t *lenp)
{
	struct stat sb;
	ssize_t n;
	size_t len = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? STORE_NOT_FOUND : STORE_IO;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		(void)close(fd);
		return STORE_IO;
	}
	if ((sb.st_mode & 077) != 0) {
		(void)close(fd);
		return STORE_PERMISSION;
	}
	/* One byte more than allowed, to tell a too-long passphrase from one that fits. */
	while (len <= STORE_PASSPHRASE_MAX &&
	       (n = read(fd, buf + len, STORE_PASSPHRASE_MAX + 1 - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			(void)close(fd);
			return STORE_IO;
		}
		len += (size_t)n;
	}
	(void)close(fd);
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len == 0 || len > STORE_PASSPHRASE_MAX)
		return STORE_INVALID;
	*lenp = len;
	return STORE_OK;
}

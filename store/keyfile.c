/*
 * keyfile.c: the database key file. It holds the raw 256-bit key as 64 hex digits and a
 * newline (lowercase when we write it; either case is read), mode 0600.
 *
 * Creating: a random key from getrandom(2) goes into a new temporary file in the same
 * directory (O_CREAT|O_EXCL, 0600), which is written, fsynced, and then linked into place
 * with link(2), which unlike rename(2) never replaces a key file another process created
 * meanwhile (we read that one instead); where the file system has no hard links, rename.
 * Then the directory is fsynced, so a crash leaves either no key file or a whole one.
 *
 * What it does not do: it does not check the directory's permissions (the caller's data
 * directory check does), and it never writes the key anywhere but the file.
 *
 * Thread safety: no shared state; two processes creating at once end up with one key.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hex.h"
#include "path.h"

/* 64 hex digits and the newline. */
#define KEYFILE_LEN (2 * STORE_KEY_LEN + 1)
#define TMP_ATTEMPTS 8

/* errno after a failed open, write or fsync, as a status. */
static store_status
errno_status(int err)
{
	switch (err) {
	case EACCES:
	case EPERM:
	case ELOOP: /* O_NOFOLLOW met a symbolic link */
		return STORE_PERMISSION;
	case ENOSPC:
	case EDQUOT:
		return STORE_NO_SPACE;
	case EROFS:
		return STORE_READ_ONLY;
	case ENOMEM:
		return STORE_NO_MEMORY;
	case ENOENT:
		return STORE_NOT_FOUND;
	default:
		return STORE_IO;
	}
}

/* Fill buf[0..len) from getrandom(2). */
static store_status
random_bytes(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return STORE_IO;
		}
		p += n;
		len -= (size_t)n;
	}
	return STORE_OK;
}

/* Read and parse an existing key file. STORE_NOT_FOUND when there is none. */
static store_status
keyfile_read(const char *path, uint8_t *key)
{
	char buf[KEYFILE_LEN + 1];
	size_t len = 0;
	struct stat sb;
	store_status rc;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno_status(errno);
	rc = STORE_IO;
	if (fstat(fd, &sb) != 0)
		goto fail;
	rc = STORE_INVALID;
	if (!S_ISREG(sb.st_mode))
		goto fail;
	rc = STORE_PERMISSION;
	if (sb.st_uid != geteuid() || (sb.st_mode & 077) != 0)
		goto fail;
	/* One byte more than a valid file holds, to notice a longer one. */
	while (len < sizeof(buf)) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = errno_status(errno);
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	rc = STORE_INVALID;
	if (len != 2 * STORE_KEY_LEN && !(len == KEYFILE_LEN && buf[len - 1] == '\n'))
		goto fail;
	if (!sd_hex_decode(buf, STORE_KEY_LEN, key))
		goto fail;
	rc = STORE_OK;
fail:
	explicit_bzero(buf, sizeof(buf));
	if (rc != STORE_OK)
		explicit_bzero(key, STORE_KEY_LEN);
	(void)close(fd);
	return rc;
}

/* Write all of buf to fd. */
static store_status
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno_status(errno);
		}
		buf += n;
		len -= (size_t)n;
	}
	return STORE_OK;
}

/* fsync the directory holding path, so a new name in it survives a crash. */
static store_status
sync_dir(const char *path)
{
	char dir[SD_PATH_BUF];
	store_status rc = STORE_OK;
	int fd;

	if (!sd_path_dir(path, dir, sizeof(dir)))
		return STORE_INVALID;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno_status(errno);
	if (fsync(fd) != 0)
		rc = errno_status(errno);
	(void)close(fd);
	return rc;
}

/* Create a temporary file next to path: *tmpp (caller frees) and its descriptor *fdp. */
static store_status
open_temp(const char *path, char **tmpp, int *fdp)
{
	size_t plen = strlen(path);
	char *tmp;
	store_status rc = STORE_IO;

	*tmpp = NULL;
	*fdp = -1;
	/* path + ".tmp." + 16 hex digits + NUL */
	if (plen > SIZE_MAX - 22)
		return STORE_INVALID;
	tmp = malloc(plen + 22);
	if (tmp == NULL)
		return STORE_NO_MEMORY;
	for (int attempt = 0; attempt < TMP_ATTEMPTS; attempt++) {
		uint8_t r[8];
		char *p = tmp + plen + 5;

		rc = random_bytes(r, sizeof(r));
		if (rc != STORE_OK)
			break;
		memcpy(tmp, path, plen);
		memcpy(tmp + plen, ".tmp.", 5);
		sd_hex_encode(r, sizeof(r), p);
		p[2 * sizeof(r)] = '\0';
		*fdp = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (*fdp >= 0) {
			*tmpp = tmp;
			return STORE_OK;
		}
		rc = errno_status(errno);
		if (errno != EEXIST)
			break;
	}
	free(tmp);
	return rc;
}

/*
 * Write key to path through a temporary file (0600, written, fsynced): linked into place
 * when replace is false (STORE_EXISTS if another process created path first, so a racing
 * creator's key is never overwritten), renamed over path when replace is true. The
 * directory is fsynced so the new name survives a crash.
 */
static store_status
keyfile_put(const char *path, const uint8_t *key, bool replace)
{
	char buf[KEYFILE_LEN];
	char *tmp = NULL;
	store_status rc;
	int fd = -1;

	sd_hex_encode(key, STORE_KEY_LEN, buf);
	buf[KEYFILE_LEN - 1] = '\n';
	rc = open_temp(path, &tmp, &fd);
	if (rc != STORE_OK)
		goto fail;
	/* The mode given to open is narrowed by the umask; make it exactly 0600. */
	if (fchmod(fd, 0600) != 0) {
		rc = errno_status(errno);
		goto fail;
	}
	rc = write_all(fd, buf, sizeof(buf));
	if (rc != STORE_OK)
		goto fail;
	if (fsync(fd) != 0) {
		rc = errno_status(errno);
		goto fail;
	}
	rc = close(fd) == 0 ? STORE_OK : errno_status(errno);
	fd = -1;
	if (rc != STORE_OK)
		goto fail;
	if (!replace && link(tmp, path) == 0) {
		/* tmp is unlinked below; path now names the file. */
	} else if (!replace && errno == EEXIST) {
		rc = STORE_EXISTS;
		goto fail;
	} else if (replace || errno == EPERM || errno == EOPNOTSUPP || errno == EMLINK) {
		/* Replacing, or no hard links here: rename (which would replace a racing
		 * creator's file in the second case). */
		if (rename(tmp, path) != 0) {
			rc = errno_status(errno);
			goto fail;
		}
		free(tmp);
		tmp = NULL;
	} else {
		rc = errno_status(errno);
		goto fail;
	}
	rc = sync_dir(path);
fail:
	explicit_bzero(buf, sizeof(buf));
	if (fd >= 0)
		(void)close(fd);
	if (tmp != NULL)
		(void)unlink(tmp);
	free(tmp);
	return rc;
}

/* Create path with a new random key. STORE_EXISTS when another process created it first. */
static store_status
keyfile_create(const char *path, uint8_t *key)
{
	store_status rc = random_bytes(key, STORE_KEY_LEN);

	if (rc == STORE_OK)
		rc = keyfile_put(path, key, false);
	if (rc != STORE_OK)
		explicit_bzero(key, STORE_KEY_LEN);
	return rc;
}

store_status
store_keyfile_write(const char *path, const uint8_t *key)
{
	return keyfile_put(path, key, true);
}

store_status
store_keyfile_rename(const char *from, const char *to)
{
	if (rename(from, to) != 0)
		return errno_status(errno);
	return sync_dir(to);
}

store_status
store_keyfile_load(const char *path, bool create, uint8_t *key, bool *createdp)
{
	store_status rc = STORE_INVALID;

	if (createdp != NULL)
		*createdp = false;
	if (path == NULL || key == NULL)
		return STORE_INVALID;
	/* Twice at most: a creation that loses a race reads the winner's file. */
	for (int attempt = 0; attempt < 2; attempt++) {
		rc = keyfile_read(path, key);
		if (rc != STORE_NOT_FOUND || !create)
			return rc;
		rc = keyfile_create(path, key);
		if (rc == STORE_EXISTS)
			continue;
		if (rc == STORE_OK && createdp != NULL)
			*createdp = true;
		return rc;
	}
	return rc == STORE_EXISTS ? STORE_IO : rc;
}

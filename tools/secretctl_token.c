/*
 * secretctl_token.c: `secretctl token new|list|revoke`, which edit the tokens file that
 * secretd reads with --tokens-file: lines `reader|admin ID SHA256HEX`, '#' comments and
 * blank lines allowed (server/auth.c is the reader). No server is involved; secretd loads
 * the file again on SIGHUP.
 *
 * new makes a token from 32 bytes of getrandom(2), `sdt_` + base64url (43 characters), and
 * appends only its SHA-256 (OpenSSL libcrypto) to the file; the token itself is printed
 * once on stdout and wiped. revoke rewrites the file without the token's line through a
 * temporary file, fsync and rename(2), keeping the file's owner and mode, so secretd never
 * reads half a file. Every edit holds an exclusive flock(2) on the file, and re-opens it
 * when a concurrent revoke replaced it meanwhile.
 *
 * Not here: checking a token against the file (secretd does), other owners' policy: a file
 * writable by group or others is refused, as secretd refuses it.
 *
 * Thread safety: single-threaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <secretd.h>

#include "hex.h"
#include "secretctl.h"

#define TOKEN_RANDOM_BYTES 32
#define TOKEN_PREFIX "sdt_"
#define TOKEN_ID_MAX 63           /* server/auth.c reads ids with %63s */
#define TOKENS_FILE_MAX (1 << 24) /* far beyond any real tokens file */

const char ctl_usage_token[] =
    "usage: secretctl token new --role reader|admin [--id ID] --tokens-file FILE\n"
    "       secretctl token list --tokens-file FILE\n"
    "       secretctl token revoke ID --tokens-file FILE\n"
    "\n"
    "Edit secretd's tokens file (no server needed; send secretd SIGHUP afterwards, e.g.\n"
    "systemctl reload secretd, to load it).\n"
    "  new      make a random token, print it once on stdout, and append\n"
    "           `ROLE ID SHA256HEX` to FILE (created 0600)\n"
    "  list     print the role and id of every token in FILE\n"
    "  revoke   rewrite FILE atomically without the token called ID\n"
    "  --role R          reader (list redacted, get, resolve) or admin (everything)\n"
    "  --id ID           a name for the token, e.g. the job's (default: ROLE-<random hex>);\n"
    "                    at most 63 of A-Z a-z 0-9 . _ - @ : +\n"
    "  --tokens-file F   the tokens file (env SECRETD_TOKENS_FILE)\n";

enum {
	OPT_HELP = 'h',
	OPT_ROLE = 256,
	OPT_ID,
	OPT_TOKENS_FILE,
};

/* One parsed line of the file: offsets into the file's text. */
struct token_line {
	size_t start; /* first byte of the line */
	size_t end;   /* one past its '\n' (or the end of the text) */
	char role[16];
	char id[TOKEN_ID_MAX + 1];
	bool entry; /* false: comment or blank */
};

/* The file, open and locked, with its text and lines. */
struct tokens_file {
	const char *path;
	int fd;
	struct stat st;
	bool created; /* this open created the file */
	char *text;
	size_t len;
	struct token_line *lines;
	size_t n_lines;
};

static void
tokens_file_close(struct tokens_file *tf)
{
	if (tf->fd >= 0)
		(void)close(tf->fd);
	free(tf->text);
	free(tf->lines);
	tf->fd = -1;
	tf->text = NULL;
	tf->lines = NULL;
}

static bool
id_ok(const char *id)
{
	size_t n = strlen(id);
	size_t i;

	if (n == 0 || n > TOKEN_ID_MAX)
		return false;
	for (i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		        strchr("._-@:+", c) != NULL))
			return false;
	}
	return true;
}

/* Read the whole file from offset 0 into tf->text. Returns 0 or an errno value. */
static int
read_text(struct tokens_file *tf)
{
	size_t cap = (size_t)tf->st.st_size + 1;
	ssize_t r;

	if (tf->st.st_size < 0 || (uint64_t)tf->st.st_size > TOKENS_FILE_MAX)
		return EFBIG;
	tf->text = malloc(cap);
	if (tf->text == NULL)
		return ENOMEM;
	tf->len = 0;
	while (tf->len < cap - 1) {
		r = pread(tf->fd, tf->text + tf->len, cap - 1 - tf->len, (off_t)tf->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno;
		if (r == 0)
			break;
		tf->len += (size_t)r;
	}
	tf->text[tf->len] = '\0';
	return 0;
}

/* Split tf->text into lines and parse the entries. Returns CTL_EXIT_OK or an exit code
 * after printing which line is malformed. */
static int
parse_lines(struct tokens_file *tf)
{
	size_t cap = 1;
	size_t pos = 0;
	size_t i;

	for (i = 0; i < tf->len; i++)
		cap += tf->text[i] == '\n';
	tf->lines = calloc(cap + 1, sizeof(*tf->lines));
	if (tf->lines == NULL)
		return ctl_usage_error("out of memory");
	while (pos < tf->len) {
		struct token_line *l = &tf->lines[tf->n_lines];
		const char *nl = memchr(tf->text + pos, '\n', tf->len - pos);
		size_t end = nl != NULL ? (size_t)(nl - tf->text) + 1 : tf->len;
		char line[512];
		char hash[80];
		size_t n = end - pos;
		int fields;

		l->start = pos;
		l->end = end;
		tf->n_lines++;
		pos = end;
		if (n >= sizeof(line))
			n = sizeof(line) - 1;
		memcpy(line, tf->text + l->start, n);
		line[n] = '\0';
		if (line[0] == '#' || line[strspn(line, " \t\r\n")] == '\0')
			continue;
		fields = sscanf(line, "%15s %63s %79s", l->role, l->id, hash);
		if (fields != 3 ||
		    (strcmp(l->role, "reader") != 0 && strcmp(l->role, "admin") != 0)) {
			(void)fprintf(stderr,
			    "secretctl: %s line %zu: expected `reader|admin ID SHA256HEX`\n",
			    tf->path, tf->n_lines);
			return CTL_EXIT_STATUS;
		}
		l->entry = true;
	}
	return CTL_EXIT_OK;
}

/*
 * Open path (creating it 0600 when create), lock it exclusively (shared for reading), check
 * it is a regular file writable by nobody but its owner, and read and parse it. On failure
 * prints why and returns an exit code; tf is then closed.
 */
static int
tokens_file_open(struct tokens_file *tf, const char *path, bool create, bool write)
{
	int flags = (write ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW;
	struct stat now;
	int rc;
	int rv;

	tf->path = path;
	tf->fd = -1;
	for (;;) {
		bool created = false;

		tf->fd = create ? open(path, flags | O_CREAT | O_EXCL, 0600) : -1;
		if (tf->fd >= 0)
			created = true;
		else if (create && errno != EEXIST)
			goto fail_errno;
		if (tf->fd < 0 && (tf->fd = open(path, flags)) < 0)
			goto fail_errno;
		if (created && fchmod(tf->fd, 0600) != 0)
			goto fail_errno;
		tf->created = created;
		while ((rv = flock(tf->fd, write ? LOCK_EX : LOCK_SH)) != 0 && errno == EINTR)
			;
		if (rv != 0 || fstat(tf->fd, &tf->st) != 0)
			goto fail_errno;
		/* A revoke may have replaced the file while we waited for the lock. */
		if (stat(path, &now) == 0 && now.st_dev == tf->st.st_dev &&
		    now.st_ino == tf->st.st_ino)
			break;
		(void)close(tf->fd);
		tf->fd = -1;
	}
	if (!S_ISREG(tf->st.st_mode)) {
		(void)fprintf(stderr, "secretctl: %s is not a regular file\n", path);
		rc = CTL_EXIT_STATUS;
		goto fail;
	}
	if ((tf->st.st_mode & 022) != 0) {
		(void)fprintf(stderr,
		    "secretctl: %s is writable by group or others (secretd refuses it too); "
		    "chmod 600 it\n",
		    path);
		rc = CTL_EXIT_STATUS;
		goto fail;
	}
	if ((rv = read_text(tf)) != 0) {
		errno = rv;
		goto fail_errno;
	}
	if ((rc = parse_lines(tf)) != CTL_EXIT_OK)
		goto fail;
	return CTL_EXIT_OK;
fail_errno:
	(void)fprintf(stderr, "secretctl: %s: %s\n", path, strerror(errno));
	rc = CTL_EXIT_STATUS;
fail:
	tokens_file_close(tf);
	return rc;
}

/* The entry with this id, or NULL. */
static const struct token_line *
find_id(const struct tokens_file *tf, const char *id)
{
	size_t i;

	for (i = 0; i < tf->n_lines; i++) {
		if (tf->lines[i].entry && strcmp(tf->lines[i].id, id) == 0)
			return &tf->lines[i];
	}
	return NULL;
}

/* Fill buf with len random bytes from the kernel. Returns 0 or an errno value. */
static int
random_bytes(unsigned char *buf, size_t len)
{
	while (len > 0) {
		ssize_t r = getrandom(buf, len, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno;
		buf += r;
		len -= (size_t)r;
	}
	return 0;
}

/* base64url without padding of in (n bytes) into out (room for 4 * ((n + 2) / 3) + 1):
 * libcrypto's base64, then its two URL-unsafe letters swapped and the padding cut. */
static void
base64url(const unsigned char *in, size_t n, char *out)
{
	int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);

	while (len > 0 && out[len - 1] == '=')
		out[--len] = '\0';
	for (int i = 0; i < len; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
}

/* Write all of buf to fd; 0 or an errno value. */
static int
write_fd(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return errno;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

static int
token_new(struct ctl *ctl, const char *path, const char *role, const char *id_opt)
{
	struct tokens_file tf = {.fd = -1};
	unsigned char raw[TOKEN_RANDOM_BYTES];
	unsigned char hash[SHA256_DIGEST_LENGTH];
	char token[sizeof(TOKEN_PREFIX) + 4 * ((TOKEN_RANDOM_BYTES + 2) / 3)];
	char id[TOKEN_ID_MAX + 1];
	char line[16 + TOKEN_ID_MAX + 2 * SHA256_DIGEST_LENGTH + 8];
	int len;
	int rc;
	int rv;

	if (role == NULL || (strcmp(role, "reader") != 0 && strcmp(role, "admin") != 0))
		return ctl_usage_error("token new: --role reader or --role admin is required");
	if (id_opt != NULL && !id_ok(id_opt))
		return ctl_usage_error(
		    "token new: --id: 1 to %d of A-Z a-z 0-9 . _ - @ : +", TOKEN_ID_MAX);
	if ((rv = random_bytes(raw, sizeof(raw))) != 0) {
		(void)fprintf(stderr, "secretctl: getrandom: %s\n", strerror(rv));
		return CTL_EXIT_STATUS;
	}
	if (id_opt != NULL) {
		(void)snprintf(id, sizeof(id), "%s", id_opt);
	} else {
		unsigned char r[6];

		if ((rv = random_bytes(r, sizeof(r))) != 0) {
			(void)fprintf(stderr, "secretctl: getrandom: %s\n", strerror(rv));
			rc = CTL_EXIT_STATUS;
			goto done;
		}
		(void)snprintf(id, sizeof(id), "%s-%02x%02x%02x%02x%02x%02x", role, r[0], r[1],
		    r[2], r[3], r[4], r[5]);
	}
	memcpy(token, TOKEN_PREFIX, strlen(TOKEN_PREFIX));
	base64url(raw, sizeof(raw), token + strlen(TOKEN_PREFIX));
	(void)SHA256((const unsigned char *)token, strlen(token), hash);
	len = snprintf(line, sizeof(line), "%s %s ", role, id);
	if (len > 0 && (size_t)len + 2 * sizeof(hash) < sizeof(line)) {
		sd_hex_encode(hash, sizeof(hash), line + len);
		len += (int)(2 * sizeof(hash));
	}
	line[len++] = '\n';

	if ((rc = tokens_file_open(&tf, path, true, true)) != CTL_EXIT_OK)
		goto done;
	if (find_id(&tf, id) != NULL) {
		(void)fprintf(stderr,
		    "secretctl: ALREADY_EXISTS: %s already has a token with id '%s' (revoke it "
		    "first)\n",
		    path, id);
		rc = CTL_EXIT_STATUS;
		goto done;
	}
	/* Append after the text we read (we hold the lock), after a newline if the last line
	 * lacks one. */
	if (lseek(tf.fd, (off_t)tf.len, SEEK_SET) < 0) {
		rv = errno;
		goto fail_write;
	}
	if (tf.len > 0 && tf.text[tf.len - 1] != '\n' && (rv = write_fd(tf.fd, "\n", 1)) != 0)
		goto fail_write;
	if ((rv = write_fd(tf.fd, line, (size_t)len)) != 0)
		goto fail_write;
	if (fsync(tf.fd) != 0) {
		rv = errno;
		goto fail_write;
	}
	/* The line is durable: only now hand out the token. */
	if (ctl->json) {
		rc = ctl_out_token_new(role, id, token, path);
	} else {
		/* write(2), not stdio: no buffer outlives the wiped token. */
		size_t tlen = strlen(token);

		token[tlen] = '\n';
		rc = fflush(stdout) == 0 && write_fd(STDOUT_FILENO, token, tlen + 1) == 0
		         ? CTL_EXIT_OK
		         : CTL_EXIT_STATUS;
		token[tlen] = '\0';
	}
	(void)fprintf(stderr,
	    "secretctl: added %s token '%s' to %s; it is shown only once. Send SIGHUP to secretd "
	    "(systemctl reload secretd) to load it.\n",
	    role, id, path);
	if (tf.created && geteuid() == 0)
		(void)fprintf(stderr,
		    "secretctl: %s was created 0600 for root: let secretd read it, e.g. chgrp "
		    "secretd %s && chmod 640 %s\n",
		    path, path, path);
	goto done;
fail_write:
	(void)fprintf(stderr, "secretctl: cannot write %s: %s\n", path, strerror(rv));
	rc = CTL_EXIT_STATUS;
done:
	tokens_file_close(&tf);
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(token, sizeof(token));
	explicit_bzero(hash, sizeof(hash));
	return rc;
}

static int
token_list(struct ctl *ctl, const char *path)
{
	struct tokens_file tf = {.fd = -1};
	const char **roles = NULL;
	const char **ids = NULL;
	size_t n = 0;
	size_t i;
	int rc;

	if ((rc = tokens_file_open(&tf, path, false, false)) != CTL_EXIT_OK)
		return rc;
	roles = calloc(tf.n_lines + 1, sizeof(*roles));
	ids = calloc(tf.n_lines + 1, sizeof(*ids));
	if (roles == NULL || ids == NULL) {
		rc = ctl_usage_error("out of memory");
		goto done;
	}
	for (i = 0; i < tf.n_lines; i++) {
		if (!tf.lines[i].entry)
			continue;
		roles[n] = tf.lines[i].role;
		ids[n] = tf.lines[i].id;
		n++;
	}
	rc = ctl_out_tokens(ctl, roles, ids, n);
done:
	free(roles);
	free(ids);
	tokens_file_close(&tf);
	return rc;
}

/* fsync the directory holding path, so that a rename in it is durable. */
static int
sync_dir(const char *path)
{
	char *copy = strdup(path);
	int fd;
	int rv = 0;

	if (copy == NULL)
		return ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		rv = errno;
	if (fd >= 0)
		(void)close(fd);
	free(copy);
	return rv;
}

static int
token_revoke(struct ctl *ctl, const char *path, const char *id)
{
	struct tokens_file tf = {.fd = -1};
	char *tmp = NULL;
	int fd = -1;
	size_t removed = 0;
	size_t i;
	int rc;
	int rv = 0;

	if ((rc = tokens_file_open(&tf, path, false, true)) != CTL_EXIT_OK)
		return rc;
	if (find_id(&tf, id) == NULL) {
		(void)fprintf(
		    stderr, "secretctl: NOT_FOUND: %s has no token with id '%s'\n", path, id);
		rc = CTL_EXIT_STATUS;
		goto done;
	}
	tmp = malloc(strlen(path) + sizeof(".XXXXXX"));
	if (tmp == NULL) {
		rc = ctl_usage_error("out of memory");
		goto done;
	}
	(void)snprintf(tmp, strlen(path) + sizeof(".XXXXXX"), "%s.XXXXXX", path);
	fd = mkstemp(tmp);
	if (fd < 0) {
		rv = errno;
		free(tmp);
		tmp = NULL;
		goto fail;
	}
	/* The same owner and mode as the file it replaces, so that secretd can read it. */
	if (fchmod(fd, tf.st.st_mode & 0755) != 0) {
		rv = errno;
		goto fail;
	}
	if ((tf.st.st_uid != geteuid() || tf.st.st_gid != getegid()) &&
	    fchown(fd, tf.st.st_uid, tf.st.st_gid) != 0) {
		rv = errno;
		goto fail;
	}
	for (i = 0; i < tf.n_lines; i++) {
		const struct token_line *l = &tf.lines[i];

		if (l->entry && strcmp(l->id, id) == 0) {
			removed++;
			continue;
		}
		if ((rv = write_fd(fd, tf.text + l->start, l->end - l->start)) != 0)
			goto fail;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		rv = errno;
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		rv = errno;
		goto fail;
	}
	free(tmp);
	tmp = NULL;
	if ((rv = sync_dir(path)) != 0)
		goto fail;
	if (ctl->json) {
		(void)printf("{\"status\":\"OK\",\"revoked\":%zu}\n", removed);
	}
	(void)fprintf(stderr,
	    "secretctl: revoked token '%s' in %s. Send SIGHUP to secretd (systemctl reload "
	    "secretd) to apply it.\n",
	    id, path);
	rc = CTL_EXIT_OK;
	goto done;
fail:
	(void)fprintf(stderr, "secretctl: cannot rewrite %s: %s\n", path, strerror(rv));
	rc = CTL_EXIT_STATUS;
done:
	if (fd >= 0)
		(void)close(fd);
	if (tmp != NULL) {
		(void)unlink(tmp);
		free(tmp);
	}
	tokens_file_close(&tf);
	return rc;
}

int
ctl_cmd_token(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, OPT_HELP},
	    {"role", required_argument, NULL, OPT_ROLE},
	    {"id", required_argument, NULL, OPT_ID},
	    {"tokens-file", required_argument, NULL, OPT_TOKENS_FILE},
	    {NULL, 0, NULL, 0},
	};
	const char *operands[3] = {NULL, NULL, NULL};
	const char *path = getenv("SECRETD_TOKENS_FILE");
	const char *role = NULL;
	const char *id = NULL;
	size_t n = 0;
	int c;

	ctl_sub_reset(ctl, opts);
	while ((c = ctl_sub_getopt(ctl, argc, argv, "-h")) != -1) {
		switch (c) {
		case OPT_HELP:
			return ctl_print_help(ctl_usage_token);
		case OPT_ROLE:
			role = optarg;
			break;
		case OPT_ID:
			id = optarg;
			break;
		case OPT_TOKENS_FILE:
			path = optarg;
			break;
		case 1:
			if (n == sizeof(operands) / sizeof(operands[0]))
				return ctl_usage_error("token: too many operands");
			operands[n++] = optarg;
			break;
		default:
			return CTL_EXIT_USAGE;
		}
	}
	for (; optind < argc && n < sizeof(operands) / sizeof(operands[0]); optind++)
		operands[n++] = argv[optind];
	if (optind < argc)
		return ctl_usage_error("token: too many operands");
	if (n == 0)
		return ctl_usage_error("token: expected new, list or revoke");
	if (path == NULL || path[0] == '\0')
		return ctl_usage_error("token: --tokens-file FILE is required");
	if (strcmp(operands[0], "new") == 0 && n == 1)
		return token_new(ctl, path, role, id);
	if (strcmp(operands[0], "list") == 0 && n == 1)
		return token_list(ctl, path);
	if (strcmp(operands[0], "revoke") == 0 && n == 2)
		return token_revoke(ctl, path, operands[1]);
	return ctl_usage_error("token: expected new, list, or revoke ID");
}

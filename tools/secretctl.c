/*
 * secretctl.c: what secretctl's commands share: the global options (accepted before the
 * command and, merged into each command's option table, after it) and the helpers for
 * reading input, option parsing and connecting. It calls no command: main and the command
 * table are in secretctl_main.c, the commands in secretctl_cmd.c, secretctl_env.c,
 * secretctl_token.c, ..., the printing in secretctl_output.c.
 *
 * Not here: any wire knowledge (libsecretd has it). Every buffer that held a value or a
 * token is wiped; a token given with --token is copied and its argv copy wiped at once.
 *
 * Thread safety: single-threaded. The options live in one struct ctl on main's stack
 * (secretctl_main.c).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <secretd.h>

#include "secretctl.h"

/* Larger than any value or statement secretd accepts; stops runaway reads. */
#define CTL_INPUT_MAX ((size_t)16 * 1024 * 1024)

/* Print help text to stdout; returns CTL_EXIT_OK. */
int
ctl_print_help(const char *text)
{
	(void)fputs(text, stdout);
	return CTL_EXIT_OK;
}

void
ctl_wipe_free(void *p, size_t len)
{
	if (p == NULL)
		return;
	explicit_bzero(p, len);
	free(p);
}

/*
 * Read f to EOF into a new NUL-terminated buffer (caller wipes and frees it with
 * ctl_wipe_free(buf, *lenp + 1)). Growing never leaves an unwiped copy behind. Returns 0 or
 * an errno value (EFBIG past CTL_INPUT_MAX).
 */
int
ctl_read_all(FILE *f, char **bufp, size_t *lenp)
{
	size_t cap = 4096;
	size_t len = 0;
	char *buf = malloc(cap);

	if (buf == NULL)
		return ENOMEM;
	for (;;) {
		size_t n = fread(buf + len, 1, cap - len - 1, f);

		len += n;
		if (n == 0) {
			if (ferror(f)) {
				ctl_wipe_free(buf, cap);
				return EIO;
			}
			break;
		}
		if (len + 1 == cap) {
			char *bigger;

			if (cap >= CTL_INPUT_MAX) {
				ctl_wipe_free(buf, cap);
				return EFBIG;
			}
			bigger = malloc(cap * 2);
			if (bigger == NULL) {
				ctl_wipe_free(buf, cap);
				return ENOMEM;
			}
			memcpy(bigger, buf, len);
			ctl_wipe_free(buf, cap);
			buf = bigger;
			cap *= 2;
		}
	}
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;
}

/* Drop one trailing "\n" or "\r\n" (editors and echo add them; keys never end so). */
void
ctl_chomp(char *buf, size_t *lenp)
{
	if (*lenp > 0 && buf[*lenp - 1] == '\n') {
		buf[--*lenp] = '\0';
		if (*lenp > 0 && buf[*lenp - 1] == '\r')
			buf[--*lenp] = '\0';
	}
}

/* Read a file or "-" (stdin) whole; see ctl_read_all. */
int
ctl_read_path(const char *path, char **bufp, size_t *lenp)
{
	FILE *f;
	int rv;

	if (strcmp(path, "-") == 0)
		return ctl_read_all(stdin, bufp, lenp);
	f = fopen(path, "re");
	if (f == NULL)
		return errno;
	rv = ctl_read_all(f, bufp, lenp);
	(void)fclose(f);
	return rv;
}

bool
ctl_parse_storage(const char *s, secretd_storage *storagep)
{
	if (strcasecmp(s, "memory") == 0 || strcasecmp(s, "temporary") == 0 ||
	    strcasecmp(s, "temp") == 0)
		*storagep = SECRETD_STORAGE_MEMORY;
	else if (strcasecmp(s, "sqlcipher") == 0 || strcasecmp(s, "persistent") == 0 ||
	         strcasecmp(s, "etcd") == 0) /* a cluster node's persistent storage */
		*storagep = SECRETD_STORAGE_SQLCIPHER;
	else if (strcasecmp(s, "any") == 0)
		*storagep = SECRETD_STORAGE_ANY;
	else
		return false;
	return true;
}

/* Connect (without waiting) using the global options. */
int
ctl_connect(struct ctl *ctl)
{
	secretd_options opts = {
	    .token = ctl->token,
	    .tls_ca_file = ctl->tls_ca,
	    .tls_server_name = ctl->tls_server_name,
	    .tls_cert_file = ctl->tls_cert,
	    .tls_key_file = ctl->tls_key,
	};
	secretd_error err;
	secretd_status st;

	st = secretd_client_open(ctl->addr, &opts, &ctl->client, &err);
	if (st != SECRETD_OK) {
		(void)ctl_out_error(ctl, &err);
		return st == SECRETD_INVALID_ARGUMENT ? CTL_EXIT_USAGE : CTL_EXIT_STATUS;
	}
	return CTL_EXIT_OK;
}

/* Keep the token in an owned, wipeable copy; wipe argv's copy when it came from there. */
static int
set_token(struct ctl *ctl, char *token, bool from_argv)
{
	char *copy = strdup(token);

	if (copy == NULL)
		return ctl_usage_error("out of memory");
	if (ctl->token != NULL)
		ctl_wipe_free(ctl->token, strlen(ctl->token));
	ctl->token = copy;
	if (from_argv)
		explicit_bzero(token, strlen(token));
	return CTL_EXIT_OK;
}

static int
set_token_file(struct ctl *ctl, const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	int rv;

	if ((rv = ctl_read_path(path, &buf, &len)) != 0)
		return ctl_usage_error("cannot read the token file %s: %s", path, strerror(rv));
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	rv = set_token(ctl, buf, true);
	ctl_wipe_free(buf, len + 1);
	return rv;
}

static bool
parse_int(const char *s, int *outp)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < INT_MIN || v > INT_MAX)
		return false;
	*outp = (int)v;
	return true;
}

/* Global option ids: above every command's own (secretctl_cmd.c uses 256..299). */
enum {
	GOPT_ADDR = 1000,
	GOPT_TOKEN,
	GOPT_TOKEN_FILE,
	GOPT_TLS_CA,
	GOPT_TLS_CERT,
	GOPT_TLS_KEY,
	GOPT_TLS_SERVER_NAME,
	GOPT_TIMEOUT,
	GOPT_JSON,
};

/* The global options, accepted before the command and after it (not -h/--help, which
 * after a command asks for that command's help). */
static const struct option global_opts[] = {
    {"addr", required_argument, NULL, GOPT_ADDR},
    {"token", required_argument, NULL, GOPT_TOKEN},
    {"token-file", required_argument, NULL, GOPT_TOKEN_FILE},
    {"tls-ca", required_argument, NULL, GOPT_TLS_CA},
    {"tls-cert", required_argument, NULL, GOPT_TLS_CERT},
    {"tls-key", required_argument, NULL, GOPT_TLS_KEY},
    {"tls-server-name", required_argument, NULL, GOPT_TLS_SERVER_NAME},
    {"timeout", required_argument, NULL, GOPT_TIMEOUT},
    {"json", no_argument, NULL, GOPT_JSON},
};

#define N_GLOBAL_OPTS (sizeof(global_opts) / sizeof(global_opts[0]))

/* Apply global option c with getopt's optarg; returns CTL_EXIT_OK or a usage exit code
 * after printing the error. */
static int
apply_global(struct ctl *ctl, int c, char *arg)
{
	switch (c) {
	case GOPT_ADDR:
		ctl->addr = arg;
		return CTL_EXIT_OK;
	case GOPT_TOKEN:
		return set_token(ctl, arg, true);
	case GOPT_TOKEN_FILE:
		return set_token_file(ctl, arg);
	case GOPT_TLS_CA:
		ctl->tls_ca = arg;
		return CTL_EXIT_OK;
	case GOPT_TLS_CERT:
		ctl->tls_cert = arg;
		return CTL_EXIT_OK;
	case GOPT_TLS_KEY:
		ctl->tls_key = arg;
		return CTL_EXIT_OK;
	case GOPT_TLS_SERVER_NAME:
		ctl->tls_server_name = arg;
		return CTL_EXIT_OK;
	case GOPT_TIMEOUT:
		if (!parse_int(arg, &ctl->timeout_ms))
			return ctl_usage_error("--timeout: not a number of ms: '%s'", arg);
		return CTL_EXIT_OK;
	case GOPT_JSON:
		ctl->json = true;
		return CTL_EXIT_OK;
	default:
		return ctl_usage_error("internal error: unknown global option %d", c);
	}
}

int
ctl_parse_global(struct ctl *ctl, int argc, char **argv, bool *helpp)
{
	struct option opts[N_GLOBAL_OPTS + 2];
	const char *env;
	int rc;
	int c;

	memcpy(opts, global_opts, sizeof(global_opts));
	opts[N_GLOBAL_OPTS] = (struct option){"help", no_argument, NULL, 'h'};
	opts[N_GLOBAL_OPTS + 1] = (struct option){NULL, 0, NULL, 0};
	if ((env = getenv("SECRETD_ADDR")) != NULL && env[0] != '\0')
		ctl->addr = env;
	if ((env = getenv("SECRETD_TOKEN")) != NULL && env[0] != '\0' &&
	    (rc = set_token(ctl, (char *)env, false)) != CTL_EXIT_OK)
		return rc;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (c == 'h') {
			*helpp = true;
			return CTL_EXIT_OK;
		}
		if (c < GOPT_ADDR)
			return ctl_usage_error(
			    "bad option or missing argument: %s", argv[optind - 1]);
		if ((rc = apply_global(ctl, c, optarg)) != CTL_EXIT_OK)
			return rc;
	}
	return CTL_EXIT_OK;
}

/* Build ctl->sub_opts: the command's options first (so its --help wins), then the
 * global ones. */
void
ctl_sub_reset(struct ctl *ctl, const struct option *longopts)
{
	size_t n = 0;
	size_t i;

	while (longopts[n].name != NULL && n + N_GLOBAL_OPTS + 1 < CTL_MAX_OPTS) {
		ctl->sub_opts[n] = longopts[n];
		n++;
	}
	for (i = 0; i < N_GLOBAL_OPTS; i++)
		ctl->sub_opts[n++] = global_opts[i];
	ctl->sub_opts[n] = (struct option){NULL, 0, NULL, 0};
	optind = 0; /* glibc: reinitialise */
	opterr = 0;
}

/*
 * Sub-command option parsing: getopt_long over argv (argv[0] is the command), options and
 * operands in any order unless optstring says otherwise. Global options are applied here
 * and skipped. Returns the command's option, -1 at the end, or '?' after printing a usage
 * error.
 */
int
ctl_sub_getopt(struct ctl *ctl, int argc, char **argv, const char *optstring)
{
	for (;;) {
		int c = getopt_long(argc, argv, optstring, ctl->sub_opts, NULL);

		if (c == '?' || c == ':') {
			(void)ctl_usage_error(
			    "%s: bad option or missing argument: %s", argv[0], argv[optind - 1]);
			return '?';
		}
		if (c < GOPT_ADDR)
			return c;
		if (apply_global(ctl, c, optarg) != CTL_EXIT_OK)
			return '?';
	}
}

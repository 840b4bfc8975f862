/*
 * secretctl.c: the command-line client of secretd, built only on libsecretd's public
 * header. Parses the global options and one command (create, drop, list, get, resolve,
 * sql, exec), makes the call and hands the result to secretctl_output.c.
 *
 * Not here: any wire knowledge (libsecretd has it) or formatting (secretctl_output.c).
 * Values are taken from argv only when the user put them there; KEY=@FILE and KEY=-
 * (stdin) keep them out of argv, and every buffer that held one is wiped. A token given
 * with --token is copied and its argv copy wiped at once.
 *
 * Thread safety: single-threaded. The options live in one struct ctl on main's stack.
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

static const char usage_main[] =
    "usage: secretctl [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Manage the secrets of a secretd server.\n"
    "\n"
    "Options:\n"
    "  --addr URL          server (env SECRETD_ADDR; default ipc://$XDG_RUNTIME_DIR/secretd.sock)\n"
    "  --token T           bearer token; prefer env SECRETD_TOKEN or --token-file (argv is\n"
    "                      visible to other users)\n"
    "  --token-file F      read the token from F\n"
    "  --tls-ca FILE       CA certificate (PEM) for tls+tcp:// servers\n"
    "  --tls-cert FILE     client certificate (PEM), with --tls-key FILE\n"
    "  --tls-server-name N name to verify (default: the URL's host)\n"
    "  --timeout MS        per-call timeout (0: 10 s default; negative: wait forever)\n"
    "  --json              print results as JSON objects, one per line\n"
    "  -h, --help          this help; COMMAND --help for a command's help\n"
    "\n"
    "Commands:\n"
    "  create   create a secret\n"
    "  drop     drop a secret\n"
    "  list     list secrets (values redacted unless --unredacted)\n"
    "  get      show one secret with its values\n"
    "  resolve  show the secret that applies to a path\n"
    "  sql      run statements (CREATE SECRET, DROP SECRET, FROM duckdb_secrets(), ...)\n"
    "  exec     run a program with a secret's fields in its environment\n"
    "\n"
    "Exit status: 0 success, 1 the call failed, 2 usage error.\n";

static const char usage_create[] =
    "usage: secretctl create --type T [--name N] [--persistent] [--replace | --if-not-exists]\n"
    "                        [--scope S]... [--provider config] KEY=VALUE | KEY=@FILE | KEY=-\n"
    "\n"
    "Create a secret of type T (openai, ollama, azure_llm) with the given fields.\n"
    "  KEY=VALUE   the value on the command line (visible in ps: avoid for keys)\n"
    "  KEY=@FILE   the value read from FILE (one trailing newline removed)\n"
    "  KEY=-       the value read from standard input (one trailing newline removed);\n"
    "              e.g. printf %%s \"$KEY\" | secretctl create --type openai api_key=-\n"
    "  --name N          name (default: __default_<type>)\n"
    "  --persistent      store in the encrypted database (default: temporary, in memory)\n"
    "  --replace         replace an existing secret of that name (CREATE OR REPLACE)\n"
    "  --if-not-exists   leave an existing secret and succeed\n"
    "  --scope S         scope prefix; repeat for several (default: the type's)\n";

static const char usage_drop[] =
    "usage: secretctl drop NAME [--temporary | --persistent | --storage memory|sqlcipher]\n"
    "                      [--if-exists]\n"
    "\n"
    "Drop a secret. Without a storage, a name held by both storages is an error.\n";

static const char usage_list[] =
    "usage: secretctl list [--type T] [--storage memory|sqlcipher] [--unredacted]\n"
    "\n"
    "List secrets like FROM duckdb_secrets(). --unredacted shows values (admin only).\n";

static const char usage_get[] =
    "usage: secretctl get NAME [--storage memory|sqlcipher]\n"
    "\n"
    "Show one secret with its values.\n";

static const char usage_resolve[] =
    "usage: secretctl resolve PATH --type T\n"
    "\n"
    "Show the secret of type T whose scope is the longest prefix of PATH, with its\n"
    "values; prints nothing (exit 0) when none matches.\n";

static const char usage_sql[] =
    "usage: secretctl sql [\"STATEMENT\"]\n"
    "\n"
    "Run one statement, or with no argument the statements on standard input: one per\n"
    "line, or several separated by ';' (a statement spans lines while a quote or\n"
    "parenthesis is open). Stops at the first error with exit status 1. Statements:\n"
    "  CREATE [OR REPLACE] [TEMPORARY|PERSISTENT] SECRET [IF NOT EXISTS] [name] (k v, ...)\n"
    "  DROP [TEMPORARY|PERSISTENT] SECRET [IF EXISTS] name [FROM storage]\n"
    "  FROM duckdb_secrets([redact := false])\n"
    "  FROM which_secret('path', 'type')\n"
    "  GET SECRET name [FROM storage]\n";

static const char usage_exec[] =
    "usage: secretctl exec --secret NAME [--storage S] [--prefix P] -- COMMAND [ARGS]...\n"
    "\n"
    "Run COMMAND with each field of the secret in its environment as PREFIX_KEY in upper\n"
    "case. The default prefix is the type's: OPENAI (OPENAI_API_KEY, OPENAI_BASE_URL),\n"
    "OLLAMA (OLLAMA_API_URL), AZURE (AZURE_API_KEY, AZURE_RESOURCE_NAME, ...).\n";

/* Print help text to stdout; returns CTL_EXIT_OK. */
static int
print_help(const char *text)
{
	(void)fputs(text, stdout);
	return CTL_EXIT_OK;
}

static void
wipe_free(void *p, size_t len)
{
	if (p == NULL)
		return;
	explicit_bzero(p, len);
	free(p);
}

/*
 * Read f to EOF into a new NUL-terminated buffer (caller wipes and frees it with
 * wipe_free(buf, *lenp + 1)). Growing never leaves an unwiped copy behind. Returns 0 or
 * an errno value (EFBIG past CTL_INPUT_MAX).
 */
static int
read_all(FILE *f, char **bufp, size_t *lenp)
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
				wipe_free(buf, cap);
				return EIO;
			}
			break;
		}
		if (len + 1 == cap) {
			char *bigger;

			if (cap >= CTL_INPUT_MAX) {
				wipe_free(buf, cap);
				return EFBIG;
			}
			bigger = malloc(cap * 2);
			if (bigger == NULL) {
				wipe_free(buf, cap);
				return ENOMEM;
			}
			memcpy(bigger, buf, len);
			wipe_free(buf, cap);
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
static void
chomp(char *buf, size_t *lenp)
{
	if (*lenp > 0 && buf[*lenp - 1] == '\n') {
		buf[--*lenp] = '\0';
		if (*lenp > 0 && buf[*lenp - 1] == '\r')
			buf[--*lenp] = '\0';
	}
}

/* Read a file or "-" (stdin) whole; see read_all. */
static int
read_path(const char *path, char **bufp, size_t *lenp)
{
	FILE *f;
	int rv;

	if (strcmp(path, "-") == 0)
		return read_all(stdin, bufp, lenp);
	f = fopen(path, "re");
	if (f == NULL)
		return errno;
	rv = read_all(f, bufp, lenp);
	(void)fclose(f);
	return rv;
}

static bool
parse_storage(const char *s, secretd_storage *storagep)
{
	if (strcasecmp(s, "memory") == 0 || strcasecmp(s, "temporary") == 0 ||
	    strcasecmp(s, "temp") == 0)
		*storagep = SECRETD_STORAGE_MEMORY;
	else if (strcasecmp(s, "sqlcipher") == 0 || strcasecmp(s, "persistent") == 0)
		*storagep = SECRETD_STORAGE_SQLCIPHER;
	else if (strcasecmp(s, "any") == 0)
		*storagep = SECRETD_STORAGE_ANY;
	else
		return false;
	return true;
}

/* Connect (without waiting) using the global options. */
static int
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

/*
 * Sub-command option parsing: getopt_long over argv (argv[0] is the command), options
 * and operands in any order. Returns the option, -1 at the end, or '?' after printing a
 * usage error.
 */
static int
sub_getopt(int argc, char **argv, const char *optstring, const struct option *longopts)
{
	int c = getopt_long(argc, argv, optstring, longopts, NULL);

	if (c == '?' || c == ':') {
		(void)ctl_usage_error("%s: bad option or missing argument: %s", argv[0],
		    argv[optind - 1]);
		return '?';
	}
	return c;
}

/* Start sub-command parsing over a fresh argv. */
static void
sub_reset(void)
{
	optind = 0; /* glibc: reinitialise */
	opterr = 0;
}

enum {
	OPT_HELP = 'h',
	OPT_TYPE = 256,
	OPT_NAME,
	OPT_PERSISTENT,
	OPT_TEMPORARY,
	OPT_REPLACE,
	OPT_IF_NOT_EXISTS,
	OPT_IF_EXISTS,
	OPT_SCOPE,
	OPT_PROVIDER,
	OPT_STORAGE,
	OPT_UNREDACTED,
	OPT_SECRET,
	OPT_PREFIX,
};

/* Fields and scopes of a create, with the values it owns. */
struct create_input {
	secretd_field *fields;
	size_t *owned_len; /* per field: size of its owned value buffer */
	size_t n_fields;
	const char **scope;
	size_t n_scope;
};

static void
create_input_free(struct create_input *in)
{
	size_t i;

	for (i = 0; in->fields != NULL && i < in->n_fields; i++) {
		if (in->owned_len[i] > 0)
			wipe_free((char *)in->fields[i].value, in->owned_len[i]);
	}
	free(in->fields);
	free(in->owned_len);
	free(in->scope);
}

/* Turn one KEY=VALUE | KEY=@FILE | KEY=- operand into a field with an owned value. */
static int
create_field(char *arg, secretd_field *field, size_t *owned_lenp, bool *stdin_usedp)
{
	char *eq = strchr(arg, '=');
	char *value;
	char *buf = NULL;
	size_t len = 0;
	int rv;

	if (eq == NULL || eq == arg)
		return ctl_usage_error("create: expected KEY=VALUE, KEY=@FILE or KEY=-, got an "
				       "operand without a key");
	*eq = '\0';
	value = eq + 1;
	if (strcmp(value, "-") == 0 || value[0] == '@') {
		const char *path = value[0] == '@' ? value + 1 : "-";

		if (strcmp(path, "-") == 0) {
			if (*stdin_usedp)
				return ctl_usage_error("create: only one value can come from stdin");
			*stdin_usedp = true;
		}
		if ((rv = read_path(path, &buf, &len)) != 0)
			return ctl_usage_error("create: cannot read the value of %s from %s: %s",
			    arg, strcmp(path, "-") == 0 ? "stdin" : path, strerror(rv));
		chomp(buf, &len);
	} else {
		/* Copy, then wipe argv's copy so that ps shows no more than "KEY=". */
		len = strlen(value);
		buf = malloc(len + 1);
		if (buf == NULL)
			return ctl_usage_error("out of memory");
		memcpy(buf, value, len + 1);
		explicit_bzero(value, len);
	}
	field->key = arg;
	field->value = buf;
	field->value_len = len;
	*owned_lenp = len + 1;
	return CTL_EXIT_OK;
}

static int
cmd_create(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, OPT_HELP},
		{"type", required_argument, NULL, OPT_TYPE},
		{"name", required_argument, NULL, OPT_NAME},
		{"persistent", no_argument, NULL, OPT_PERSISTENT},
		{"temporary", no_argument, NULL, OPT_TEMPORARY},
		{"replace", no_argument, NULL, OPT_REPLACE},
		{"if-not-exists", no_argument, NULL, OPT_IF_NOT_EXISTS},
		{"scope", required_argument, NULL, OPT_SCOPE},
		{"provider", required_argument, NULL, OPT_PROVIDER},
		{NULL, 0, NULL, 0},
	};
	secretd_create_args args = {.on_conflict = SECRETD_CONFLICT_ERROR};
	struct create_input in = {.fields = NULL};
	secretd_create_result res;
	secretd_error err;
	bool stdin_used = false;
	int rc = CTL_EXIT_OK;
	int c, i;

	in.scope = calloc((size_t)argc + 1, sizeof(*in.scope));
	in.fields = calloc((size_t)argc + 1, sizeof(*in.fields));
	in.owned_len = calloc((size_t)argc + 1, sizeof(*in.owned_len));
	if (in.scope == NULL || in.fields == NULL || in.owned_len == NULL) {
		rc = ctl_usage_error("out of memory");
		goto done;
	}
	sub_reset();
	/* "-" permutes: operands are returned as option 1 in order, so KEY=- works. */
	while ((c = getopt_long(argc, argv, "-h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_HELP:
			rc = print_help(usage_create);
			goto done;
		case OPT_TYPE:
			args.type = optarg;
			break;
		case OPT_NAME:
			args.name = optarg;
			break;
		case OPT_PERSISTENT:
			args.persistent = true;
			break;
		case OPT_TEMPORARY:
			args.persistent = false;
			break;
		case OPT_REPLACE:
		case OPT_IF_NOT_EXISTS:
			if (args.on_conflict != SECRETD_CONFLICT_ERROR) {
				rc = ctl_usage_error(
				    "create: --replace and --if-not-exists exclude each other");
				goto done;
			}
			args.on_conflict = c == OPT_REPLACE ? SECRETD_CONFLICT_REPLACE
							    : SECRETD_CONFLICT_IGNORE;
			break;
		case OPT_SCOPE:
			in.scope[in.n_scope++] = optarg;
			break;
		case OPT_PROVIDER:
			args.provider = optarg;
			break;
		case 1:
			rc = create_field(optarg, &in.fields[in.n_fields],
			    &in.owned_len[in.n_fields], &stdin_used);
			if (rc != CTL_EXIT_OK)
				goto done;
			in.n_fields++;
			break;
		default:
			rc = ctl_usage_error("create: bad option or missing argument: %s",
			    argv[optind - 1]);
			goto done;
		}
	}
	for (i = optind; i < argc; i++) { /* operands after "--" */
		rc = create_field(argv[i], &in.fields[in.n_fields], &in.owned_len[in.n_fields],
		    &stdin_used);
		if (rc != CTL_EXIT_OK)
			goto done;
		in.n_fields++;
	}
	if (args.type == NULL) {
		rc = ctl_usage_error("create: --type is required");
		goto done;
	}
	args.fields = in.fields;
	args.n_fields = in.n_fields;
	args.scope = in.scope;
	args.n_scope = in.n_scope;
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		goto done;
	if (secretd_create(ctl->client, &args, ctl->timeout_ms, &res, &err) != SECRETD_OK)
		rc = ctl_out_error(ctl, &err);
	else
		rc = ctl_out_created(ctl, &res);
done:
	create_input_free(&in);
	return rc;
}

static int
cmd_drop(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, OPT_HELP},
		{"temporary", no_argument, NULL, OPT_TEMPORARY},
		{"persistent", no_argument, NULL, OPT_PERSISTENT},
		{"storage", required_argument, NULL, OPT_STORAGE},
		{"if-exists", no_argument, NULL, OPT_IF_EXISTS},
		{NULL, 0, NULL, 0},
	};
	secretd_storage storage = SECRETD_STORAGE_ANY;
	secretd_storage given;
	bool storage_set = false;
	bool if_exists = false;
	secretd_drop_result res;
	secretd_error err;
	int rc;
	int c;

	sub_reset();
	while ((c = sub_getopt(argc, argv, "h", opts)) != -1) {
		given = SECRETD_STORAGE_ANY;
		switch (c) {
		case OPT_HELP:
			return print_help(usage_drop);
		case OPT_IF_EXISTS:
			if_exists = true;
			continue;
		case OPT_TEMPORARY:
			given = SECRETD_STORAGE_MEMORY;
			break;
		case OPT_PERSISTENT:
			given = SECRETD_STORAGE_SQLCIPHER;
			break;
		case OPT_STORAGE:
			if (!parse_storage(optarg, &given))
				return ctl_usage_error("drop: unknown storage '%s'", optarg);
			break;
		default:
			return CTL_EXIT_USAGE;
		}
		if (storage_set && given != storage)
			return ctl_usage_error("drop: give one storage");
		storage = given;
		storage_set = true;
	}
	if (argc - optind != 1)
		return ctl_usage_error("drop: expected one NAME");
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	if (secretd_drop(ctl->client, argv[optind], storage, if_exists, ctl->timeout_ms, &res,
		&err) != SECRETD_OK)
		return ctl_out_error(ctl, &err);
	return ctl_out_dropped(ctl, &res);
}

static int
cmd_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, OPT_HELP},
		{"type", required_argument, NULL, OPT_TYPE},
		{"storage", required_argument, NULL, OPT_STORAGE},
		{"unredacted", no_argument, NULL, OPT_UNREDACTED},
		{NULL, 0, NULL, 0},
	};
	secretd_list_args args = {.storage = SECRETD_STORAGE_ANY};
	secretd_rows *rows = NULL;
	secretd_error err;
	int rc;
	int c;

	sub_reset();
	while ((c = sub_getopt(argc, argv, "h", opts)) != -1) {
		switch (c) {
		case OPT_HELP:
			return print_help(usage_list);
		case OPT_TYPE:
			args.type = optarg;
			break;
		case OPT_STORAGE:
			if (!parse_storage(optarg, &args.storage))
				return ctl_usage_error("list: unknown storage '%s'", optarg);
			break;
		case OPT_UNREDACTED:
			args.unredacted = true;
			break;
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (optind != argc)
		return ctl_usage_error("list: unexpected operand '%s'", argv[optind]);
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	if (secretd_list(ctl->client, &args, ctl->timeout_ms, &rows, &err) != SECRETD_OK)
		return ctl_out_error(ctl, &err);
	rc = ctl_out_rows(ctl, rows);
	secretd_rows_free(rows);
	return rc;
}

static int
cmd_get(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, OPT_HELP},
		{"storage", required_argument, NULL, OPT_STORAGE},
		{NULL, 0, NULL, 0},
	};
	secretd_storage storage = SECRETD_STORAGE_ANY;
	secretd_secret *secret = NULL;
	secretd_error err;
	int rc;
	int c;

	sub_reset();
	while ((c = sub_getopt(argc, argv, "h", opts)) != -1) {
		switch (c) {
		case OPT_HELP:
			return print_help(usage_get);
		case OPT_STORAGE:
			if (!parse_storage(optarg, &storage))
				return ctl_usage_error("get: unknown storage '%s'", optarg);
			break;
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return ctl_usage_error("get: expected one NAME");
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	if (secretd_get(ctl->client, argv[optind], storage, ctl->timeout_ms, &secret, &err) !=
	    SECRETD_OK)
		return ctl_out_error(ctl, &err);
	rc = ctl_out_secret(ctl, secret);
	secretd_secret_free(secret);
	return rc;
}

static int
cmd_resolve(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, OPT_HELP},
		{"type", required_argument, NULL, OPT_TYPE},
		{NULL, 0, NULL, 0},
	};
	const char *type = NULL;
	secretd_secret *secret = NULL;
	secretd_error err;
	int rc;
	int c;

	sub_reset();
	while ((c = sub_getopt(argc, argv, "h", opts)) != -1) {
		switch (c) {
		case OPT_HELP:
			return print_help(usage_resolve);
		case OPT_TYPE:
			type = optarg;
			break;
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return ctl_usage_error("resolve: expected one PATH");
	if (type == NULL)
		return ctl_usage_error("resolve: --type is required");
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	if (secretd_resolve(ctl->client, argv[optind], type, ctl->timeout_ms, &secret, &err) !=
	    SECRETD_OK)
		return ctl_out_error(ctl, &err);
	if (secret == NULL && !ctl->json)
		(void)fprintf(stderr, "secretctl: no %s secret applies to %s\n", type,
		    argv[optind]);
	rc = ctl_out_secret(ctl, secret);
	secretd_secret_free(secret);
	return rc;
}

/* Run one statement and print its result. */
static int
sql_run(struct ctl *ctl, const char *statement)
{
	secretd_result *res = NULL;
	secretd_error err;
	int rc;

	if (secretd_execute(ctl->client, statement, ctl->timeout_ms, &res, &err) != SECRETD_OK)
		return ctl_out_error(ctl, &err);
	rc = ctl_out_result(ctl, res);
	secretd_result_free(res);
	return rc;
}

/*
 * Run the statements in text (modified in place): each ends at a ';' outside quotes and
 * comments, or at a newline outside quotes while no parenthesis is open. Statements with
 * nothing but blanks and comments are skipped. Stops at the first failure.
 */
static int
sql_run_script(struct ctl *ctl, char *text, size_t len)
{
	char quote = 0; /* '\'' or '"' while inside one; '' and "" re-open at once */
	bool comment = false;
	bool content = false;
	int depth = 0;
	size_t start = 0;
	size_t i;
	int rc;

	for (i = 0; i <= len; i++) {
		char ch = text[i]; /* text[len] is the NUL */
		bool split;

		if (i == len) {
			split = true;
		} else if (quote != 0) {
			if (ch == quote)
				quote = 0;
			continue;
		} else if (comment) {
			if (ch != '\n')
				continue;
			comment = false;
			split = depth == 0;
		} else if (ch == '-' && text[i + 1] == '-') {
			comment = true;
			i++;
			continue;
		} else if (ch == '\'' || ch == '"') {
			quote = ch;
			content = true;
			continue;
		} else if (ch == '(' || ch == ')') {
			depth += ch == '(' ? 1 : depth > 0 ? -1 : 0;
			content = true;
			continue;
		} else if (ch == ';') {
			split = true;
		} else if (ch == '\n') {
			split = depth == 0;
		} else {
			if (ch != ' ' && ch != '\t' && ch != '\r')
				content = true;
			continue;
		}
		if (!split)
			continue;
		text[i] = '\0';
		if (content && (rc = sql_run(ctl, text + start)) != CTL_EXIT_OK)
			return rc;
		start = i + 1;
		content = false;
		if (ch == ';')
			depth = 0;
	}
	return CTL_EXIT_OK;
}

static int
cmd_sql(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, OPT_HELP},
		{NULL, 0, NULL, 0},
	};
	char *text = NULL;
	size_t len = 0;
	int rc;
	int c;

	sub_reset();
	while ((c = sub_getopt(argc, argv, "h", opts)) != -1) {
		if (c == OPT_HELP)
			return print_help(usage_sql);
		return CTL_EXIT_USAGE;
	}
	if (argc - optind > 1)
		return ctl_usage_error("sql: give one statement (quote it), or none to read "
				       "statements from stdin");
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	if (argc - optind == 1)
		return sql_run(ctl, argv[optind]);
	if ((rc = read_all(stdin, &text, &len)) != 0)
		return ctl_usage_error("sql: cannot read stdin: %s", strerror(rc));
	rc = sql_run_script(ctl, text, len);
	wipe_free(text, len + 1);
	return rc;
}

/* The environment prefix of a type: the stem of its default name. */
static const char *
exec_prefix(const char *type)
{
	if (strcasecmp(type, "azure_llm") == 0)
		return "AZURE";
	if (strcasecmp(type, "ollama") == 0)
		return "OLLAMA";
	if (strcasecmp(type, "openai") == 0)
		return "OPENAI";
	return type;
}

/* Export every field as PREFIX_KEY; the strings are wiped on failure. */
static int
exec_export(const secretd_secret *secret, const char *prefix)
{
	size_t i;

	for (i = 0; i < secret->n_fields; i++) {
		const secretd_field *f = &secret->fields[i];
		size_t n = strlen(prefix) + 1 + strlen(f->key) + 1;
		char *name = malloc(n);
		char *p;
		int rv;

		if (name == NULL)
			return ENOMEM;
		(void)snprintf(name, n, "%s_%s", prefix, f->key);
		for (p = name; *p != '\0'; p++) {
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
			else if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
				*p = '_';
		}
		rv = setenv(name, f->value, 1) == 0 ? 0 : errno;
		free(name);
		if (rv != 0)
			return rv;
	}
	return 0;
}

static int
cmd_exec(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, OPT_HELP},
		{"secret", required_argument, NULL, OPT_SECRET},
		{"storage", required_argument, NULL, OPT_STORAGE},
		{"prefix", required_argument, NULL, OPT_PREFIX},
		{NULL, 0, NULL, 0},
	};
	secretd_storage storage = SECRETD_STORAGE_ANY;
	const char *name = NULL;
	const char *prefix = NULL;
	secretd_secret *secret = NULL;
	secretd_error err;
	int rc;
	int c;

	sub_reset();
	/* "+": stop at COMMAND, so that its own options stay its own even without "--". */
	while ((c = sub_getopt(argc, argv, "+h", opts)) != -1) {
		switch (c) {
		case OPT_HELP:
			return print_help(usage_exec);
		case OPT_SECRET:
			name = optarg;
			break;
		case OPT_STORAGE:
			if (!parse_storage(optarg, &storage))
				return ctl_usage_error("exec: unknown storage '%s'", optarg);
			break;
		case OPT_PREFIX:
			prefix = optarg;
			break;
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (name == NULL)
		return ctl_usage_error("exec: --secret is required");
	if (optind >= argc)
		return ctl_usage_error("exec: expected -- COMMAND [ARGS]...");
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	if (secretd_get(ctl->client, name, storage, ctl->timeout_ms, &secret, &err) !=
	    SECRETD_OK)
		return ctl_out_error(ctl, &err);
	rc = exec_export(secret, prefix != NULL ? prefix : exec_prefix(secret->type));
	secretd_secret_free(secret);
	if (rc != 0) {
		(void)fprintf(stderr, "secretctl: exec: cannot set the environment: %s\n",
		    strerror(rc));
		return CTL_EXIT_STATUS;
	}
	secretd_client_close(ctl->client);
	ctl->client = NULL;
	(void)fflush(stdout);
	execvp(argv[optind], &argv[optind]);
	rc = errno;
	(void)fprintf(stderr, "secretctl: exec: %s: %s\n", argv[optind], strerror(rc));
	return rc == ENOENT ? 127 : 126;
}

/* Keep the token in an owned, wipeable copy; wipe argv's copy when it came from there. */
static int
set_token(struct ctl *ctl, char *token, bool from_argv)
{
	char *copy = strdup(token);

	if (copy == NULL)
		return ctl_usage_error("out of memory");
	if (ctl->token != NULL)
		wipe_free(ctl->token, strlen(ctl->token));
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

	if ((rv = read_path(path, &buf, &len)) != 0)
		return ctl_usage_error("cannot read the token file %s: %s", path, strerror(rv));
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	rv = set_token(ctl, buf, true);
	wipe_free(buf, len + 1);
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

enum {
	GOPT_ADDR = 300,
	GOPT_TOKEN,
	GOPT_TOKEN_FILE,
	GOPT_TLS_CA,
	GOPT_TLS_CERT,
	GOPT_TLS_KEY,
	GOPT_TLS_SERVER_NAME,
	GOPT_TIMEOUT,
	GOPT_JSON,
};

/* Parse the global options up to the command; returns CTL_EXIT_OK or an exit code. */
static int
parse_global(struct ctl *ctl, int argc, char **argv, bool *helpp)
{
	static const struct option opts[] = {
		{"addr", required_argument, NULL, GOPT_ADDR},
		{"token", required_argument, NULL, GOPT_TOKEN},
		{"token-file", required_argument, NULL, GOPT_TOKEN_FILE},
		{"tls-ca", required_argument, NULL, GOPT_TLS_CA},
		{"tls-cert", required_argument, NULL, GOPT_TLS_CERT},
		{"tls-key", required_argument, NULL, GOPT_TLS_KEY},
		{"tls-server-name", required_argument, NULL, GOPT_TLS_SERVER_NAME},
		{"timeout", required_argument, NULL, GOPT_TIMEOUT},
		{"json", no_argument, NULL, GOPT_JSON},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *env;
	int rc;
	int c;

	if ((env = getenv("SECRETD_ADDR")) != NULL && env[0] != '\0')
		ctl->addr = env;
	if ((env = getenv("SECRETD_TOKEN")) != NULL && env[0] != '\0' &&
	    (rc = set_token(ctl, (char *)env, false)) != CTL_EXIT_OK)
		return rc;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		rc = CTL_EXIT_OK;
		switch (c) {
		case 'h':
			*helpp = true;
			return CTL_EXIT_OK;
		case GOPT_ADDR:
			ctl->addr = optarg;
			break;
		case GOPT_TOKEN:
			rc = set_token(ctl, optarg, true);
			break;
		case GOPT_TOKEN_FILE:
			rc = set_token_file(ctl, optarg);
			break;
		case GOPT_TLS_CA:
			ctl->tls_ca = optarg;
			break;
		case GOPT_TLS_CERT:
			ctl->tls_cert = optarg;
			break;
		case GOPT_TLS_KEY:
			ctl->tls_key = optarg;
			break;
		case GOPT_TLS_SERVER_NAME:
			ctl->tls_server_name = optarg;
			break;
		case GOPT_TIMEOUT:
			if (!parse_int(optarg, &ctl->timeout_ms))
				return ctl_usage_error("--timeout: not a number of ms: '%s'",
				    optarg);
			break;
		case GOPT_JSON:
			ctl->json = true;
			break;
		default:
			return ctl_usage_error("bad option or missing argument: %s",
			    argv[optind - 1]);
		}
		if (rc != CTL_EXIT_OK)
			return rc;
	}
	return CTL_EXIT_OK;
}

struct command {
	const char *name;
	int (*run)(struct ctl *ctl, int argc, char **argv);
	const char *usage;
};

static const struct command commands[] = {
	{"create", cmd_create, usage_create},
	{"drop", cmd_drop, usage_drop},
	{"list", cmd_list, usage_list},
	{"get", cmd_get, usage_get},
	{"resolve", cmd_resolve, usage_resolve},
	{"sql", cmd_sql, usage_sql},
	{"exec", cmd_exec, usage_exec},
};

static const struct command *
find_command(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	struct ctl ctl = {.timeout_ms = SECRETD_TIMEOUT_DEFAULT};
	const struct command *cmd;
	bool help = false;
	int rc;

	ctl_json_wipe_init();
	rc = parse_global(&ctl, argc, argv, &help);
	if (rc != CTL_EXIT_OK || help) {
		if (help)
			rc = print_help(usage_main);
		goto done;
	}
	if (optind >= argc) {
		(void)fputs(usage_main, stderr);
		rc = CTL_EXIT_USAGE;
		goto done;
	}
	if (strcmp(argv[optind], "help") == 0) {
		cmd = optind + 1 < argc ? find_command(argv[optind + 1]) : NULL;
		rc = print_help(cmd != NULL ? cmd->usage : usage_main);
		goto done;
	}
	cmd = find_command(argv[optind]);
	if (cmd == NULL) {
		rc = ctl_usage_error("unknown command '%s'", argv[optind]);
		goto done;
	}
	rc = cmd->run(&ctl, argc - optind, argv + optind);
done:
	secretd_client_close(ctl.client);
	if (ctl.token != NULL)
		wipe_free(ctl.token, strlen(ctl.token));
	if (fflush(stdout) != 0 && rc == CTL_EXIT_OK)
		rc = CTL_EXIT_STATUS;
	return rc;
}

/*
 * secretctl_cmd.c: secretctl's commands that map onto one libsecretd call each (create,
 * drop, list, get, resolve, sql, rekey): each parses its own options and operands, makes
 * one libsecretd call (sql: one per statement) and hands the result to secretctl_output.c.
 *
 * Not here: main and the command table (secretctl_main.c), the global options and shared
 * helpers (secretctl.c), formatting (secretctl_output.c), exec and env (secretctl_env.c),
 * token (secretctl_token.c).
 * Values read for create (KEY=@FILE, KEY=-) and sql scripts from stdin are wiped after
 * use; a KEY=VALUE operand is copied and wiped in argv.
 *
 * Thread safety: single-threaded (getopt's state is global).
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <secretd.h>

#include "path.h"
#include "secretctl.h"

const char ctl_usage_create[] =
    "usage: secretctl create --type T [--name N] [--persistent] [--replace | --if-not-exists]\n"
    "                        [--scope S]... [--provider config] KEY=VALUE | KEY=@FILE | KEY=-\n"
    "\n"
    "Create a secret of type T (openai, ollama, azure_llm) with the given fields.\n"
    "  KEY=VALUE   the value on the command line (visible in ps: avoid for keys)\n"
    "  KEY=@FILE   the value read from FILE (one trailing newline removed)\n"
    "  KEY=-       the value read from standard input (one trailing newline removed);\n"
    "              e.g. printf %s \"$KEY\" | secretctl create --type openai api_key=-\n"
    "  --name N          name (default: __default_<type>)\n"
    "  --persistent      store in the encrypted database (default: temporary, in memory)\n"
    "  --temporary       store in memory (the default; undoes an earlier --persistent)\n"
    "  --replace         replace an existing secret of that name (CREATE OR REPLACE)\n"
    "  --if-not-exists   leave an existing secret and succeed\n"
    "  --scope S         scope prefix; repeat for several (default: the type's)\n"
    "  --provider P      config, the only provider (optional)\n";

const char ctl_usage_drop[] =
    "usage: secretctl drop NAME [--temporary | --persistent | --storage memory|sqlcipher]\n"
    "                      [--if-exists]\n"
    "\n"
    "Drop a secret. Without a storage, a name held by both storages is an error.\n";

const char ctl_usage_list[] =
    "usage: secretctl list [--type T] [--storage memory|sqlcipher] [--unredacted]\n"
    "\n"
    "List secrets like FROM duckdb_secrets(). --unredacted shows values (admin only).\n";

const char ctl_usage_get[] = "usage: secretctl get NAME [--storage memory|sqlcipher]\n"
                             "\n"
                             "Show one secret with its values.\n";

const char ctl_usage_resolve[] =
    "usage: secretctl resolve PATH --type T\n"
    "\n"
    "Show the secret of type T whose scope is the longest prefix of PATH, with its\n"
    "values; prints nothing (exit 0) when none matches.\n";

const char ctl_usage_sql[] =
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

const char ctl_usage_rekey[] =
    "usage: secretctl rekey\n"
    "\n"
    "Rotate the server's database key (admin role): secretd makes a new random key,\n"
    "re-encrypts the database under it and replaces its key file atomically; the key never\n"
    "crosses the wire. Prints the key file's path on the server. Large databases may need\n"
    "a longer --timeout.\n";

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
			ctl_wipe_free((char *)in->fields[i].value, in->owned_len[i]);
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
				return ctl_usage_error(
				    "create: only one value can come from stdin");
			*stdin_usedp = true;
		}
		if ((rv = ctl_read_path(path, &buf, &len)) != 0)
			return ctl_usage_error("create: cannot read the value of %s from %s: %s",
			    arg, strcmp(path, "-") == 0 ? "stdin" : path, strerror(rv));
		ctl_chomp(buf, &len);
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

int
ctl_cmd_create(struct ctl *ctl, int argc, char **argv)
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
	ctl_sub_reset(ctl, opts);
	/* "-" permutes: operands are returned as option 1 in order, so KEY=- works. */
	while ((c = ctl_sub_getopt(ctl, argc, argv, "-h")) != -1) {
		switch (c) {
		case OPT_HELP:
			rc = ctl_print_help(ctl_usage_create);
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
			args.on_conflict =
			    c == OPT_REPLACE ? SECRETD_CONFLICT_REPLACE : SECRETD_CONFLICT_IGNORE;
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
		default: /* ctl_sub_getopt printed the error */
			rc = CTL_EXIT_USAGE;
			goto done;
		}
	}
	for (i = optind; i < argc; i++) { /* operands after "--" */
		rc = create_field(
		    argv[i], &in.fields[in.n_fields], &in.owned_len[in.n_fields], &stdin_used);
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

int
ctl_cmd_drop(struct ctl *ctl, int argc, char **argv)
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

	ctl_sub_reset(ctl, opts);
	while ((c = ctl_sub_getopt(ctl, argc, argv, "h")) != -1) {
		given = SECRETD_STORAGE_ANY;
		switch (c) {
		case OPT_HELP:
			return ctl_print_help(ctl_usage_drop);
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
			if (!ctl_parse_storage(optarg, &given))
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

int
ctl_cmd_list(struct ctl *ctl, int argc, char **argv)
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

	ctl_sub_reset(ctl, opts);
	while ((c = ctl_sub_getopt(ctl, argc, argv, "h")) != -1) {
		switch (c) {
		case OPT_HELP:
			return ctl_print_help(ctl_usage_list);
		case OPT_TYPE:
			args.type = optarg;
			break;
		case OPT_STORAGE:
			if (!ctl_parse_storage(optarg, &args.storage))
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

int
ctl_cmd_get(struct ctl *ctl, int argc, char **argv)
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

	ctl_sub_reset(ctl, opts);
	while ((c = ctl_sub_getopt(ctl, argc, argv, "h")) != -1) {
		switch (c) {
		case OPT_HELP:
			return ctl_print_help(ctl_usage_get);
		case OPT_STORAGE:
			if (!ctl_parse_storage(optarg, &storage))
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

int
ctl_cmd_resolve(struct ctl *ctl, int argc, char **argv)
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

	ctl_sub_reset(ctl, opts);
	while ((c = ctl_sub_getopt(ctl, argc, argv, "h")) != -1) {
		switch (c) {
		case OPT_HELP:
			return ctl_print_help(ctl_usage_resolve);
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
		(void)fprintf(
		    stderr, "secretctl: no %s secret applies to %s\n", type, argv[optind]);
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

/* Strip leading and trailing blanks in place. */
static char *
trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	n = strlen(s);
	while (
	    n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
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
		if (content && (rc = sql_run(ctl, trim(text + start))) != CTL_EXIT_OK)
			return rc;
		start = i + 1;
		content = false;
		if (ch == ';')
			depth = 0;
	}
	return CTL_EXIT_OK;
}

int
ctl_cmd_sql(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0},
	};
	char *text = NULL;
	size_t len = 0;
	int rc;
	int c;

	ctl_sub_reset(ctl, opts);
	while ((c = ctl_sub_getopt(ctl, argc, argv, "h")) != -1) {
		if (c == OPT_HELP)
			return ctl_print_help(ctl_usage_sql);
		return CTL_EXIT_USAGE;
	}
	if (argc - optind > 1)
		return ctl_usage_error("sql: give one statement (quote it), or none to read "
		                       "statements from stdin");
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	if (argc - optind == 1)
		return sql_run(ctl, argv[optind]);
	if ((rc = ctl_read_all(stdin, &text, &len)) != 0)
		return ctl_usage_error("sql: cannot read stdin: %s", strerror(rc));
	rc = sql_run_script(ctl, text, len);
	ctl_wipe_free(text, len + 1);
	return rc;
}

int
ctl_cmd_rekey(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0},
	};
	char key_file[SD_PATH_BUF];
	secretd_error err;
	int rc;
	int c;

	ctl_sub_reset(ctl, opts);
	while ((c = ctl_sub_getopt(ctl, argc, argv, "h")) != -1) {
		if (c == OPT_HELP)
			return ctl_print_help(ctl_usage_rekey);
		return CTL_EXIT_USAGE;
	}
	if (optind != argc)
		return ctl_usage_error("rekey: unexpected operand '%s'", argv[optind]);
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	if (secretd_rekey(ctl->client, ctl->timeout_ms, key_file, sizeof(key_file), &err) !=
	    SECRETD_OK)
		return ctl_out_error(ctl, &err);
	return ctl_out_rekeyed(ctl, key_file);
}

/*
 * secretctl_export.c: `secretctl export --duckdb`, which prints the secrets a caller may read
 * as statements DuckDB runs as written, one per secret:
 *
 *   CREATE OR REPLACE TEMPORARY SECRET name (TYPE openai, API_KEY '...', SCOPE 'openai://');
 *
 * TEMPORARY so that DuckDB never writes a value into its unencrypted secret directory; no
 * PROVIDER, so that DuckDB uses the type's default provider (FlockMTL registers its own,
 * `flock`, and secretd's `config` is not one DuckDB knows). A secret that carries its type's
 * default name (__default_openai, __default_ollama, __default_azure) is printed unnamed, so
 * that DuckDB names it __default_<type>: the name FlockMTL looks up (__default_azure_llm for
 * Azure). Strings are single-quoted with quotes doubled (DuckDB's '...' keeps backslashes);
 * a name is double-quoted whenever its bare form would not come back as the same name.
 *
 * Reader role is enough: one redacted List for the names, then one Get per secret.
 * The whole output is built in one buffer, written with write(2) only when every secret was
 * read, and wiped: a failure prints nothing on stdout and never a value on stderr.
 *
 * Thread safety: single-threaded, like the rest of secretctl.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <secretd.h>

#include "secretctl.h"

const char ctl_usage_export[] =
    "usage: secretctl export --duckdb [--type T] [--load flock|flockmtl|none] [NAME...]\n"
    "\n"
    "Print secrets as DuckDB statements (CREATE OR REPLACE TEMPORARY SECRET ...;), one per\n"
    "line: all that the caller may read, or the NAMEs given. Reader role is enough.\n"
    "e.g. duckdb -init <(secretctl export --duckdb --load flock)\n"
    "  --duckdb        the output format (the only one; required)\n"
    "  --type T        only secrets of type T (openai, ollama, azure_llm)\n"
    "  --load EXT      first print LOAD EXT; (flock or flockmtl; none: no LOAD line)\n"
    "A secret named __default_openai, __default_ollama or __default_azure is exported\n"
    "unnamed, so DuckDB names it __default_<type> (__default_azure_llm for Azure), the\n"
    "name FlockMTL looks up. A name held by both storages is exported once, from memory.\n";

enum {
	OPT_HELP = 'h',
	OPT_DUCKDB = 256,
	OPT_TYPE,
	OPT_LOAD,
};

/* A growing output buffer; every byte it ever held is wiped (it holds values). */
struct out {
	char *buf;
	size_t len, cap;
	bool failed; /* out of memory */
};

static void
out_free(struct out *o)
{
	ctl_wipe_free(o->buf, o->cap);
	o->buf = NULL;
	o->len = o->cap = 0;
}

static void
out_put(struct out *o, const char *s, size_t n)
{
	if (o->failed)
		return;
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 1024;
		char *bigger;

		while (o->len + n + 1 > cap)
			cap *= 2;
		bigger = malloc(cap);
		if (bigger == NULL) {
			o->failed = true;
			return;
		}
		if (o->len > 0)
			memcpy(bigger, o->buf, o->len);
		ctl_wipe_free(o->buf, o->cap);
		o->buf = bigger;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void
out_str(struct out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

/* 'value' with every ' doubled. DuckDB's '...' strings keep backslashes and newlines as
 * they are, so nothing else needs escaping. */
static void
out_string(struct out *o, const char *s, size_t len)
{
	size_t i, start = 0;

	out_put(o, "'", 1);
	for (i = 0; i < len; i++) {
		if (s[i] == '\'') {
			out_put(o, s + start, i + 1 - start);
			out_put(o, "'", 1);
			start = i + 1;
		}
	}
	out_put(o, s + start, len - start);
	out_put(o, "'", 1);
}

/*
 * DuckDB 1.4.4's keywords that cannot be a bare secret name: the categories `reserved` and
 * `type_function` of duckdb_keywords(). Checked against DuckDB itself: every other keyword
 * is accepted bare after CREATE SECRET (tests/duckdb/export.mjs creates a secret named after
 * each of duckdb_keywords() through this output). Sorted for bsearch.
 */
/* clang-format off */
static const char *const duckdb_reserved[] = {
    "all", "analyse", "analyze", "and", "anti", "any", "array", "as", "asc", "asof",
    "asymmetric", "at", "authorization", "binary", "both", "by", "case", "cast", "check",
    "collate", "collation", "column", "concurrently", "constraint", "create", "cross",
    "default", "deferrable", "desc", "describe", "distinct", "do", "else", "end", "except",
    "false", "fetch", "for", "foreign", "freeze", "from", "full", "glob", "group", "having",
    "ilike", "in", "initially", "inner", "intersect", "into", "is", "isnull", "join", "lambda",
    "lateral", "leading", "left", "like", "limit", "natural", "not", "notnull", "null",
    "offset", "on", "only", "or", "order", "outer", "overlaps", "pivot", "pivot_longer",
    "pivot_wider", "placing", "positional", "primary", "qualify", "references", "returning",
    "right", "select", "semi", "show", "similar", "some", "summarize", "symmetric", "table",
    "tablesample", "then", "to", "trailing", "true", "union", "unique", "unpack", "unpivot",
    "using", "variadic", "verbose", "when", "where", "window", "with",
};
/* clang-format on */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Whether DuckDB reads name back, unquoted, as the same name: a lower-case ASCII
 * identifier that is not one of the keywords above. (DuckDB lowercases every secret name,
 * quoted or not, and so does secretd, so case never needs quotes to survive; quotes are
 * kept for anything else, non-ASCII included.) */
static bool
bare_name_ok(const char *name)
{
	const char *p;

	if (!((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
		return false;
	for (p = name; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	}
	return bsearch(&name, duckdb_reserved, sizeof(duckdb_reserved) / sizeof(duckdb_reserved[0]),
	           sizeof(duckdb_reserved[0]), cmp_str) == NULL;
}

static void
out_name(struct out *o, const char *name)
{
	const char *p;

	if (bare_name_ok(name)) {
		out_str(o, name);
		return;
	}
	out_put(o, "\"", 1);
	for (p = name; *p != '\0'; p++) {
		out_put(o, p, 1);
		if (*p == '"')
			out_put(o, "\"", 1);
	}
	out_put(o, "\"", 1);
}

/* secretd's default name for type (SPEC §1), or NULL for a type it does not know. */
static const char *
default_name(const char *type)
{
	if (strcmp(type, "openai") == 0)
		return "__default_openai";
	if (strcmp(type, "ollama") == 0)
		return "__default_ollama";
	if (strcmp(type, "azure_llm") == 0)
		return "__default_azure";
	return NULL;
}

/* Append one statement for s. Returns CTL_EXIT_OK, or CTL_EXIT_STATUS after a message
 * (naming the secret and field, never the value) when DuckDB's SQL cannot carry it. */
static int
out_secret(struct out *o, const secretd_secret *s)
{
	const char *dflt = default_name(s->type);
	size_t i;

	for (i = 0; i < s->n_fields; i++) {
		if (memchr(s->fields[i].value, '\0', s->fields[i].value_len) != NULL) {
			(void)fprintf(stderr,
			    "secretctl: export: field '%s' of secret '%s' holds a NUL byte, which "
			    "a "
			    "DuckDB string cannot carry\n",
			    s->fields[i].key, s->name);
			return CTL_EXIT_STATUS;
		}
	}
	out_str(o, "CREATE OR REPLACE TEMPORARY SECRET ");
	if (dflt == NULL || strcmp(s->name, dflt) != 0) {
		out_name(o, s->name);
		out_str(o, " ");
	}
	out_str(o, "(TYPE ");
	out_name(o, s->type);
	for (i = 0; i < s->n_fields; i++) {
		const char *k;

		out_str(o, ", ");
		/* Field keys are the type's lower-case identifiers; DuckDB is case-insensitive
		 * there, and upper case reads like its documentation. */
		for (k = s->fields[i].key; *k != '\0'; k++) {
			char c = (*k >= 'a' && *k <= 'z') ? (char)(*k - 'a' + 'A') : *k;

			out_put(o, &c, 1);
		}
		out_str(o, " ");
		out_string(o, s->fields[i].value, s->fields[i].value_len);
	}
	if (s->n_scope == 1) {
		out_str(o, ", SCOPE ");
		out_string(o, s->scope[0], strlen(s->scope[0]));
	} else if (s->n_scope > 1) {
		out_str(o, ", SCOPE (");
		for (i = 0; i < s->n_scope; i++) {
			if (i > 0)
				out_str(o, ", ");
			out_string(o, s->scope[i], strlen(s->scope[i]));
		}
		out_str(o, ")");
	}
	out_str(o, ");\n");
	return CTL_EXIT_OK;
}

static bool
write_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(STDOUT_FILENO, buf, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		buf += w;
		len -= (size_t)w;
	}
	return true;
}

/* Whether row i is the persistent twin of a temporary secret of the same name (rows are
 * sorted by name, then storage: memory first). */
static bool
shadowed(const secretd_rows *rows, size_t i)
{
	return i > 0 && strcmp(rows->rows[i].name, rows->rows[i - 1].name) == 0;
}

/* Whether operand names[0..n) asks for name (ASCII case-insensitive, as secretd compares). */
static bool
wanted(char *const *names, size_t n, const char *name, bool *seen)
{
	size_t i;
	bool hit = false;

	if (n == 0)
		return true;
	for (i = 0; i < n; i++) {
		if (strcasecmp(names[i], name) == 0) {
			seen[i] = true;
			hit = true;
		}
	}
	return hit;
}

/* Write the statement of every listed row that is wanted (marking names[] in seen) into o,
 * each read with a Get; a secret held by both storages once, from memory. Returns a
 * CTL_EXIT_* status, having printed why on failure. */
static int
export_rows(struct ctl *ctl, const secretd_rows *rows, char **names, size_t n_names, bool *seen,
    struct out *o)
{
	for (size_t i = 0; i < rows->n_rows; i++) {
		const secretd_row *row = &rows->rows[i];
		secretd_storage storage =
		    row->persistent ? SECRETD_STORAGE_SQLCIPHER : SECRETD_STORAGE_MEMORY;
		secretd_secret *secret = NULL;
		secretd_error err;
		secretd_status st;
		int rc;

		if (!wanted(names, n_names, row->name, seen) || shadowed(rows, i))
			continue;
		st = secretd_get(ctl->client, row->name, storage, ctl->timeout_ms, &secret, &err);
		if (st == SECRETD_NOT_FOUND && n_names == 0)
			continue; /* dropped since the listing: it is not there to export */
		if (st != SECRETD_OK)
			return ctl_out_error(ctl, &err);
		rc = out_secret(o, secret);
		secretd_secret_free(secret);
		if (rc != CTL_EXIT_OK)
			return rc;
	}
	return CTL_EXIT_OK;
}

int
ctl_cmd_export(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, OPT_HELP},
	    {"duckdb", no_argument, NULL, OPT_DUCKDB},
	    {"type", required_argument, NULL, OPT_TYPE},
	    {"load", required_argument, NULL, OPT_LOAD},
	    {NULL, 0, NULL, 0},
	};
	secretd_list_args args = {.storage = SECRETD_STORAGE_ANY};
	secretd_rows *rows = NULL;
	secretd_error err;
	struct out o = {0};
	const char *load = NULL;
	bool duckdb = false;
	bool *seen = NULL;
	char **names;
	size_t n_names, i;
	int rc = CTL_EXIT_OK;
	int c;

	ctl_sub_reset(ctl, opts);
	while ((c = ctl_sub_getopt(ctl, argc, argv, "h")) != -1) {
		switch (c) {
		case OPT_HELP:
			return ctl_print_help(ctl_usage_export);
		case OPT_DUCKDB:
			duckdb = true;
			break;
		case OPT_TYPE:
			args.type = optarg;
			break;
		case OPT_LOAD:
			if (strcmp(optarg, "flock") == 0 || strcmp(optarg, "flockmtl") == 0)
				load = optarg;
			else if (strcmp(optarg, "none") == 0)
				load = NULL;
			else
				return ctl_usage_error(
				    "export: --load takes flock, flockmtl or none, not '%s'",
				    optarg);
			break;
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (!duckdb)
		return ctl_usage_error("export: give the format, --duckdb (the only one)");
	names = argv + optind;
	n_names = (size_t)(argc - optind);
	if (n_names > 0 && (seen = calloc(n_names, sizeof(*seen))) == NULL)
		return ctl_usage_error("out of memory");
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		goto done;
	if (secretd_list(ctl->client, &args, ctl->timeout_ms, &rows, &err) != SECRETD_OK) {
		rc = ctl_out_error(ctl, &err);
		goto done;
	}
	if (load != NULL) {
		out_str(&o, "LOAD ");
		out_str(&o, load);
		out_str(&o, ";\n");
	}
	if ((rc = export_rows(ctl, rows, names, n_names, seen, &o)) != CTL_EXIT_OK)
		goto done;
	for (i = 0; i < n_names; i++) {
		if (!seen[i]) {
			(void)fprintf(stderr, "secretctl: export: no secret named '%s'%s%s\n",
			    names[i], args.type ? " of type " : "", args.type ? args.type : "");
			rc = CTL_EXIT_STATUS;
			goto done;
		}
	}
	if (o.failed) {
		(void)fprintf(stderr, "secretctl: export: out of memory\n");
		rc = CTL_EXIT_STATUS;
	} else if (o.len > 0 && !write_all(o.buf, o.len)) {
		(void)fprintf(
		    stderr, "secretctl: export: cannot write the output: %s\n", strerror(errno));
		rc = CTL_EXIT_STATUS;
	}
done:
	secretd_rows_free(rows);
	out_free(&o);
	free(seen);
	return rc;
}

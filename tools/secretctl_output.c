/*
 * secretctl_output.c: how secretctl prints. Human-readable output is aligned tables
 * (listings) and key/value lines (one secret); --json output is exactly the objects of
 * SPEC §4, built with jansson, compact, keys in the order the SPEC shows, one object and
 * a newline per result.
 *
 * Not here: deciding what to print. Values are printed only when the caller hands over a
 * result that holds them (get, resolve, an unredacted listing, sql); errors never carry
 * one. jansson's allocators are replaced with ones that wipe every block they free.
 *
 * Thread safety: single-threaded; ctl_json_wipe_init changes jansson's global allocator.
 */
#include <stdalign.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "secretctl.h"

#define WIPE_HEADER (sizeof(max_align_t))

static void *
wipe_malloc(size_t size)
{
	unsigned char *p;

	if (size > SIZE_MAX - WIPE_HEADER)
		return NULL;
	p = malloc(WIPE_HEADER + size);
	if (p == NULL)
		return NULL;
	memcpy(p, &size, sizeof(size));
	return p + WIPE_HEADER;
}

static void
wipe_free(void *ptr)
{
	unsigned char *p;
	size_t size;

	if (ptr == NULL)
		return;
	p = (unsigned char *)ptr - WIPE_HEADER;
	memcpy(&size, p, sizeof(size));
	explicit_bzero(p, WIPE_HEADER + size);
	free(p);
}

void
ctl_json_wipe_init(void)
{
	json_set_alloc_funcs(wipe_malloc, wipe_free);
}

int
ctl_usage_error(const char *fmt, ...)
{
	va_list ap;

	(void)fputs("secretctl: ", stderr);
	va_start(ap, fmt);
	(void)vfprintf(stderr, fmt, ap);
	va_end(ap);
	(void)fputs("\n(see secretctl --help)\n", stderr);
	return CTL_EXIT_USAGE;
}

/* Add a string member; false when the value is not UTF-8 or memory ran out. */
static bool
jset_strn(json_t *obj, const char *key, const char *val, size_t len)
{
	json_t *s = json_stringn(val != NULL ? val : "", val != NULL ? len : 0);

	return s != NULL && json_object_set_new(obj, key, s) == 0;
}

static bool
jset_str(json_t *obj, const char *key, const char *val)
{
	return jset_strn(obj, key, val, val != NULL ? strlen(val) : 0);
}

static bool
jset_bool(json_t *obj, const char *key, bool val)
{
	return json_object_set_new(obj, key, json_boolean(val)) == 0;
}

static bool
jset_strings(json_t *obj, const char *key, const char *const *v, size_t n)
{
	json_t *arr = json_array();
	size_t i;

	if (arr == NULL)
		return false;
	for (i = 0; i < n; i++) {
		json_t *s = json_string(v[i]);

		if (s == NULL || json_array_append_new(arr, s) != 0) {
			json_decref(arr);
			return false;
		}
	}
	return json_object_set_new(obj, key, arr) == 0;
}

/* A new {"status":"OK"} object, or NULL. */
static json_t *
json_ok(void)
{
	json_t *obj = json_object();

	if (obj != NULL && !jset_str(obj, "status", "OK")) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

/* Print obj (taken) and a newline, wipe every copy jansson made. */
static int
json_emit(json_t *obj)
{
	char *text;
	int rc = CTL_EXIT_OK;

	if (obj == NULL) {
		(void)fputs("secretctl: cannot encode the result as JSON (not UTF-8?)\n", stderr);
		return CTL_EXIT_STATUS;
	}
	text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	if (text == NULL) {
		(void)fputs("secretctl: cannot encode the result as JSON\n", stderr);
		return CTL_EXIT_STATUS;
	}
	if (fputs(text, stdout) == EOF || fputc('\n', stdout) == EOF) {
		(void)fputs("secretctl: cannot write to stdout\n", stderr);
		rc = CTL_EXIT_STATUS;
	}
	wipe_free(text); /* json_dumps allocated it with wipe_malloc */
	return rc;
}

/* Finish a json object built with a running ok flag. */
static int
json_finish(json_t *obj, bool ok)
{
	if (!ok) {
		json_decref(obj);
		obj = NULL;
	}
	return json_emit(obj);
}

int
ctl_out_error(const struct ctl *ctl, const secretd_error *err)
{
	const char *name = secretd_status_str(err->status);

	if (ctl->json) {
		json_t *obj = json_object();
		bool ok = obj != NULL;

		ok = ok && jset_str(obj, "status", name);
		ok = ok && jset_str(obj, "reason", err->reason);
		ok = ok && jset_str(obj, "message", err->message);
		(void)json_finish(obj, ok);
	}
	if (err->reason[0] != '\0' && strcmp(err->reason, name) != 0)
		(void)fprintf(stderr, "secretctl: %s (%s): %s\n", name, err->reason, err->message);
	else
		(void)fprintf(stderr, "secretctl: %s: %s\n", name, err->message);
	return CTL_EXIT_STATUS;
}

/* The storage's name as the server gave it ("etcd" from a cluster node), else the enum's. */
static const char *
storage_text(const char *name, secretd_storage storage)
{
	return name != NULL && name[0] != '\0' ? name : secretd_storage_str(storage);
}

/* Whether an object comes from a cluster node: it names a node (a temporary secret) or is
 * in etcd. Only then do listings show a node column, so one machine's output keeps the
 * shapes of SPEC section 4. */
static bool
from_cluster(const char *storage, const char *node)
{
	return (node != NULL && node[0] != '\0') || (storage != NULL && strcmp(storage, "etcd") == 0);
}

/* "node": the node holding a temporary secret, null for one in etcd (every node has it);
 * nothing on one machine. */
static bool
jset_node(json_t *obj, const char *storage, const char *node)
{
	if (node != NULL && node[0] != '\0')
		return jset_str(obj, "node", node);
	if (from_cluster(storage, node))
		return json_object_set_new(obj, "node", json_null()) == 0;
	return true;
}

/* {"status":"OK","name":...,"storage":...}: the shape of create and drop (and "node" from
 * a cluster node). */
static int
json_name_storage(const char *name, const char *storage, const char *node)
{
	json_t *obj = json_ok();
	bool ok = obj != NULL;

	ok = ok && jset_str(obj, "name", name);
	ok = ok && jset_str(obj, "storage", storage);
	ok = ok && jset_node(obj, storage, node);
	return json_finish(obj, ok);
}

int
ctl_out_created(const struct ctl *ctl, const secretd_create_result *res)
{
	const char *storage = storage_text(res->storage_name, res->storage);

	if (ctl->json)
		return json_name_storage(res->name, storage, res->node);
	if (res->created)
		(void)printf("created secret %s in %s%s%s\n", res->name, storage,
		    res->node[0] != '\0' ? " on node " : "", res->node);
	else
		(void)printf("secret %s already exists in %s%s%s; left unchanged\n", res->name,
		    storage, res->node[0] != '\0' ? " on node " : "", res->node);
	return CTL_EXIT_OK;
}

int
ctl_out_dropped(const struct ctl *ctl, const secretd_drop_result *res)
{
	const char *storage = storage_text(res->storage_name, res->storage);

	if (ctl->json) {
		if (!res->dropped) /* DROP ... IF EXISTS of a name held nowhere */
			storage = secretd_storage_str(res->storage);
		return json_name_storage(res->name, storage, res->node);
	}
	if (res->dropped)
		(void)printf("dropped secret %s from %s%s%s\n", res->name, storage,
		    res->node[0] != '\0' ? " on node " : "", res->node);
	else
		(void)printf("no such secret; nothing dropped\n");
	return CTL_EXIT_OK;
}

/* Join strings with sep into a new string (caller frees with free after wiping). */
static char *
join(const char *const *v, size_t n, const char *sep)
{
	size_t len = 1;
	size_t i;
	char *out;

	for (i = 0; i < n; i++)
		len += strlen(v[i]) + strlen(sep);
	out = malloc(len);
	if (out == NULL)
		return NULL;
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		if (i > 0)
			strcat(out, sep);
		strcat(out, v[i]);
	}
	return out;
}

/*
 * Print a table of ncol columns: header names, then nrow rows of cells (row-major).
 * Columns are padded to their widest cell, two blanks apart; no line ends in blanks.
 */
static void
print_table(const char *const *header, size_t ncol, const char *const *cells, size_t nrow)
{
	size_t width[16] = {0};
	size_t r, c;

	ncol = ncol < 16 ? ncol : 16;
	for (c = 0; c < ncol; c++)
		width[c] = strlen(header[c]);
	for (r = 0; r < nrow; r++) {
		for (c = 0; c < ncol; c++) {
			size_t w = strlen(cells[r * ncol + c]);

			width[c] = w > width[c] ? w : width[c];
		}
	}
	for (r = 0; r <= nrow; r++) {
		const char *const *row = r == 0 ? header : &cells[(r - 1) * ncol];
		size_t pad = 0; /* blanks owed before the next non-empty cell */

		for (c = 0; c < ncol; c++) {
			size_t len = strlen(row[c]);

			if (len > 0) {
				(void)printf("%*s%s", (int)pad, "", row[c]);
				pad = 0;
			}
			pad += width[c] - len + 2;
		}
		(void)putchar('\n');
	}
}

int
ctl_out_rows(const struct ctl *ctl, const secretd_rows *rows)
{
	static const char *const header[] = {
	    "name", "type", "provider", "persistent", "storage", "scope", "secret_string", "node"};
	enum { NCOL = sizeof(header) / sizeof(header[0]) };
	const char **cells = NULL;
	char **scopes = NULL;
	size_t i;
	int rc = CTL_EXIT_OK;
	bool cluster = false; /* a node column, after the columns of duckdb_secrets() */

	for (i = 0; i < rows->n_rows; i++)
		cluster = cluster || from_cluster(rows->rows[i].storage, rows->rows[i].node);

	if (ctl->json) {
		json_t *obj = json_ok();
		json_t *arr = json_array();
		bool ok = obj != NULL && arr != NULL;

		for (i = 0; ok && i < rows->n_rows; i++) {
			const secretd_row *row = &rows->rows[i];
			json_t *o = json_object();

			ok = o != NULL;
			ok = ok && jset_str(o, "name", row->name);
			ok = ok && jset_str(o, "type", row->type);
			ok = ok && jset_str(o, "provider", row->provider);
			ok = ok && jset_bool(o, "persistent", row->persistent);
			ok = ok && jset_str(o, "storage", row->storage);
			ok = ok && jset_strings(o, "scope", row->scope, row->n_scope);
			ok = ok && jset_str(o, "secret_string", row->secret_string);
			ok = ok && jset_node(o, row->storage, row->node);
			if (o != NULL && json_array_append_new(arr, o) != 0)
				ok = false;
		}
		if (ok && json_object_set_new(obj, "rows", arr) != 0)
			ok = false;
		else if (!ok)
			json_decref(arr);
		return json_finish(obj, ok);
	}

	cells = calloc(rows->n_rows * NCOL + 1, sizeof(*cells));
	scopes = calloc(rows->n_rows + 1, sizeof(*scopes));
	if (cells == NULL || scopes == NULL)
		goto oom;
	for (i = 0; i < rows->n_rows; i++) {
		const secretd_row *row = &rows->rows[i];
		const char **cell = &cells[i * (cluster ? NCOL : NCOL - 1)];

		scopes[i] = join(row->scope, row->n_scope, ",");
		if (scopes[i] == NULL)
			goto oom;
		cell[0] = row->name;
		cell[1] = row->type;
		cell[2] = row->provider;
		cell[3] = row->persistent ? "true" : "false";
		cell[4] = row->storage;
		cell[5] = scopes[i];
		cell[6] = row->secret_string;
		if (cluster)
			cell[7] = row->node != NULL && row->node[0] != '\0' ? row->node : "-";
	}
	print_table(header, cluster ? NCOL : NCOL - 1, cells, rows->n_rows);
	goto done;
oom:
	(void)fputs("secretctl: out of memory\n", stderr);
	rc = CTL_EXIT_STATUS;
done:
	for (i = 0; scopes != NULL && i < rows->n_rows; i++)
		free(scopes[i]);
	free(scopes);
	free(cells);
	return rc;
}

/* which_secret()'s persistent column as DuckDB prints it. */
static const char *
resolved_persistent(const secretd_resolved_row *row)
{
	return row->persistent ? "PERSISTENT" : "TEMPORARY";
}

int
ctl_out_resolved(const struct ctl *ctl, const secretd_resolved_row *rows, size_t n)
{
	static const char *const header[] = {"name", "persistent", "storage", "node"};
	const char **cells;
	size_t i;
	bool cluster = false;

	for (i = 0; i < n; i++)
		cluster = cluster || from_cluster(rows[i].storage, rows[i].node);

	if (ctl->json) {
		json_t *obj = json_ok();
		json_t *arr = json_array();
		bool ok = obj != NULL && arr != NULL;

		for (i = 0; ok && i < n; i++) {
			json_t *o = json_object();

			ok = o != NULL;
			ok = ok && jset_str(o, "name", rows[i].name);
			/* which_secret()'s JSON keeps DuckDB's shape: a string. */
			ok = ok && jset_str(o, "persistent", resolved_persistent(&rows[i]));
			ok = ok && jset_str(o, "storage", rows[i].storage);
			ok = ok && jset_node(o, rows[i].storage, rows[i].node);
			if (o != NULL && json_array_append_new(arr, o) != 0)
				ok = false;
		}
		if (ok && json_object_set_new(obj, "rows", arr) != 0)
			ok = false;
		else if (!ok)
			json_decref(arr);
		return json_finish(obj, ok);
	}
	cells = calloc(n * 4 + 1, sizeof(*cells));
	if (cells == NULL) {
		(void)fputs("secretctl: out of memory\n", stderr);
		return CTL_EXIT_STATUS;
	}
	for (i = 0; i < n; i++) {
		size_t ncol = cluster ? 4 : 3;

		cells[i * ncol] = rows[i].name;
		cells[i * ncol + 1] = resolved_persistent(&rows[i]);
		cells[i * ncol + 2] = rows[i].storage;
		if (cluster)
			cells[i * ncol + 3] =
			    rows[i].node != NULL && rows[i].node[0] != '\0' ? rows[i].node : "-";
	}
	print_table(header, cluster ? 4 : 3, cells, n);
	free(cells);
	return CTL_EXIT_OK;
}

/* The "secret" object of SPEC §4: name, type, provider, persistent, storage, scope,
 * fields. */
static json_t *
json_secret(const secretd_secret *secret)
{
	json_t *obj = json_object();
	json_t *fields = json_object();
	bool ok = obj != NULL && fields != NULL;
	size_t i;

	ok = ok && jset_str(obj, "name", secret->name);
	ok = ok && jset_str(obj, "type", secret->type);
	ok = ok && jset_str(obj, "provider", secret->provider);
	ok = ok && jset_bool(obj, "persistent", secret->storage == SECRETD_STORAGE_SQLCIPHER);
	ok = ok && jset_str(obj, "storage", storage_text(secret->storage_name, secret->storage));
	ok = ok && jset_strings(obj, "scope", secret->scope, secret->n_scope);
	for (i = 0; ok && i < secret->n_fields; i++) {
		const secretd_field *f = &secret->fields[i];

		ok = jset_strn(fields, f->key, f->value, f->value_len);
	}
	if (ok && json_object_set_new(obj, "fields", fields) == 0 &&
	    jset_node(obj, storage_text(secret->storage_name, secret->storage), secret->node))
		return obj;
	if (ok) {
		json_decref(obj);
		return NULL;
	}
	if (!ok)
		json_decref(fields);
	json_decref(obj);
	return NULL;
}

int
ctl_out_secret(const struct ctl *ctl, const secretd_secret *secret)
{
	size_t width = strlen("persistent");
	char *scope;
	size_t i;

	if (ctl->json) {
		json_t *obj = json_ok();
		json_t *s = secret != NULL ? json_secret(secret) : json_null();
		bool ok = obj != NULL && s != NULL;

		if (ok && json_object_set_new(obj, "secret", s) != 0)
			ok = false;
		else if (!ok)
			json_decref(s);
		return json_finish(obj, ok);
	}
	if (secret == NULL)
		return CTL_EXIT_OK;
	scope = join(secret->scope, secret->n_scope, ",");
	if (scope == NULL) {
		(void)fputs("secretctl: out of memory\n", stderr);
		return CTL_EXIT_STATUS;
	}
	for (i = 0; i < secret->n_fields; i++) {
		size_t w = strlen(secret->fields[i].key);

		width = w > width ? w : width;
	}
	(void)printf("%-*s  %s\n", (int)width, "name", secret->name);
	(void)printf("%-*s  %s\n", (int)width, "type", secret->type);
	(void)printf("%-*s  %s\n", (int)width, "provider", secret->provider);
	(void)printf("%-*s  %s\n", (int)width, "persistent",
	    secret->storage == SECRETD_STORAGE_SQLCIPHER ? "true" : "false");
	(void)printf("%-*s  %s\n", (int)width, "storage",
	    storage_text(secret->storage_name, secret->storage));
	if (secret->node != NULL && secret->node[0] != '\0')
		(void)printf("%-*s  %s\n", (int)width, "node", secret->node);
	(void)printf("%-*s  %s\n", (int)width, "scope", scope);
	for (i = 0; i < secret->n_fields; i++) {
		const secretd_field *f = &secret->fields[i];

		(void)printf("%-*s  ", (int)width, f->key);
		(void)fwrite(f->value, 1, f->value_len, stdout);
		(void)putchar('\n');
	}
	free(scope);
	return CTL_EXIT_OK;
}

int
ctl_out_result(const struct ctl *ctl, const secretd_result *res)
{
	switch (res->kind) {
	case SECRETD_RESULT_CREATED:
		return ctl_out_created(ctl, &res->created);
	case SECRETD_RESULT_DROPPED:
		return ctl_out_dropped(ctl, &res->dropped);
	case SECRETD_RESULT_ROWS:
		return ctl_out_rows(ctl, res->rows);
	case SECRETD_RESULT_RESOLVED:
		return ctl_out_resolved(ctl, res->resolved, res->n_resolved);
	case SECRETD_RESULT_SECRET:
		return ctl_out_secret(ctl, res->secret);
	}
	(void)fprintf(stderr, "secretctl: unknown result kind %d\n", (int)res->kind);
	return CTL_EXIT_STATUS;
}

int
ctl_out_env(const char *const *names, const char *const *values, const size_t *value_lens, size_t n)
{
	json_t *obj = json_ok();
	json_t *env = json_object();
	bool ok = obj != NULL && env != NULL;
	size_t i;

	for (i = 0; ok && i < n; i++)
		ok = jset_strn(env, names[i], values[i], value_lens[i]);
	if (ok && json_object_set_new(obj, "env", env) != 0)
		ok = false;
	else if (!ok)
		json_decref(env);
	return json_finish(obj, ok);
}

int
ctl_out_rekeyed(const struct ctl *ctl, const char *key_file)
{
	json_t *obj;
	bool ok;

	if (!ctl->json) {
		(void)printf("rotated the database key; key file %s\n", key_file);
		return CTL_EXIT_OK;
	}
	obj = json_ok();
	ok = obj != NULL && jset_str(obj, "key_file", key_file);
	return json_finish(obj, ok);
}

int
ctl_out_tokens(const struct ctl *ctl, const char *const *roles, const char *const *ids, size_t n)
{
	static const char *const header[] = {"role", "id"};
	const char **cells;
	size_t i;

	if (ctl->json) {
		json_t *obj = json_ok();
		json_t *arr = json_array();
		bool ok = obj != NULL && arr != NULL;

		for (i = 0; ok && i < n; i++) {
			json_t *o = json_object();

			ok = o != NULL;
			ok = ok && jset_str(o, "role", roles[i]);
			ok = ok && jset_str(o, "id", ids[i]);
			if (o != NULL && json_array_append_new(arr, o) != 0)
				ok = false;
		}
		if (ok && json_object_set_new(obj, "tokens", arr) != 0)
			ok = false;
		else if (!ok)
			json_decref(arr);
		return json_finish(obj, ok);
	}
	cells = calloc(n * 2 + 1, sizeof(*cells));
	if (cells == NULL) {
		(void)fputs("secretctl: out of memory\n", stderr);
		return CTL_EXIT_STATUS;
	}
	for (i = 0; i < n; i++) {
		cells[i * 2] = roles[i];
		cells[i * 2 + 1] = ids[i];
	}
	print_table(header, 2, cells, n);
	free(cells);
	return CTL_EXIT_OK;
}

int
ctl_out_token_new(const char *role, const char *id, const char *token, const char *path)
{
	json_t *obj = json_ok();
	bool ok = obj != NULL;

	ok = ok && jset_str(obj, "role", role);
	ok = ok && jset_str(obj, "id", id);
	ok = ok && jset_str(obj, "token", token);
	ok = ok && jset_str(obj, "tokens_file", path);
	return json_finish(obj, ok);
}

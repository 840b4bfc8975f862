/*
 * text.c: text frames in, JSON out. See text.h. JSON is built with jansson (Debian's
 * libjansson), never by hand, so escaping is always right.
 */
#include "text.h"

#include <assert.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "handlers.h"
#include "pb.h"
#include "utf8.h"

/* jansson's allocator: a size header in front of each block so free can wipe it. */
static void *
wiping_malloc(size_t n)
{
	size_t *p = malloc(sizeof(size_t) * 2 + n);

	if (p == NULL)
		return NULL;
	p[0] = n;
	return p + 2;
}

static void
wiping_free(void *ptr)
{
	size_t *p;

	if (ptr == NULL)
		return;
	p = (size_t *)ptr - 2;
	explicit_bzero(p, sizeof(size_t) * 2 + p[0]);
	free(p);
}

void
text_init(void)
{
	json_set_alloc_funcs(wiping_malloc, wiping_free);
}

static const char *
storage_json(int storage)
{
	switch (storage) {
	case PB_STORAGE_MEMORY:
		return "memory";
	case PB_STORAGE_SQLCIPHER:
		return "sqlcipher";
	default:
		return NULL;
	}
}

static json_t *
scope_json(char **scope, size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < n; i++) {
		if (json_array_append_new(arr, json_string(scope[i])) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *
row_json(const pb_row *r)
{
	return json_pack("{s:s, s:s, s:s, s:b, s:s, s:o?, s:s}", "name", r->name, "type", r->type,
	    "provider", r->provider, "persistent", r->persistent, "storage", r->storage, "scope",
	    scope_json(r->scope, r->n_scope), "secret_string", r->secret_string);
}

static json_t *
secret_json(const pb_secret *s)
{
	json_t *fields = json_object();
	json_t *obj;

	if (fields == NULL)
		return NULL;
	for (size_t i = 0; i < s->n_fields; i++) {
		const pb_field *f = s->fields[i];

		if (json_object_set_new(fields, f->key,
		        json_stringn((const char *)f->value.data, f->value.len)) != 0) {
			json_decref(fields);
			return NULL;
		}
	}
	obj = json_pack("{s:s, s:s, s:s, s:b, s:s, s:o?, s:o}", "name", s->name, "type", s->type,
	    "provider", s->provider, "persistent", s->storage == PB_STORAGE_SQLCIPHER, "storage",
	    storage_json(s->storage), "scope", scope_json(s->scope, s->n_scope), "fields", fields);
	return obj;
}

/* The JSON object for a successful statement. */
static json_t *
result_json(const pb_statement_reply *rep)
{
	json_t *rows;

	switch (rep->kind) {
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_CREATED:
		return json_pack("{s:s, s:s, s:s}", "status", "OK", "name", rep->created->name,
		    "storage", storage_json(rep->created->storage));
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_DROPPED:
		return json_pack("{s:s, s:s, s:s?}", "status", "OK", "name", rep->dropped->name,
		    "storage", storage_json(rep->dropped->storage));
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_ROWS:
		rows = json_array();
		for (size_t i = 0; rows != NULL && i < rep->n_rows; i++) {
			if (json_array_append_new(rows, row_json(rep->rows[i])) != 0) {
				json_decref(rows);
				rows = NULL;
			}
		}
		return json_pack("{s:s, s:o}", "status", "OK", "rows", rows);
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_RESOLVED:
		rows = json_array();
		for (size_t i = 0; rows != NULL && i < rep->n_resolved; i++) {
			const pb_resolve_row *r = rep->resolved[i];

			if (json_array_append_new(
			        rows, json_pack("{s:s, s:s, s:s}", "name", r->name, "persistent",
			                  r->persistent, "storage", r->storage)) != 0) {
				json_decref(rows);
				rows = NULL;
			}
		}
		return json_pack("{s:s, s:o}", "status", "OK", "rows", rows);
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_SECRET:
		return json_pack("{s:s, s:o}", "status", "OK", "secret", secret_json(rep->secret));
	default:
		return NULL;
	}
}

static json_t *
error_json(const struct outcome *oc)
{
	return json_pack("{s:s, s:s, s:s}", "status", status_str(oc->status), "reason",
	    oc->reason != NULL ? oc->reason : "", "message", oc->message);
}

/* Serialise root (taken) plus a newline into a buffer from alloc. */
static enum status
emit(json_t *root, reply_alloc_fn alloc, void *alloc_arg)
{
	size_t n;
	uint8_t *buf;

	if (root == NULL)
		return ST_RESOURCE_EXHAUSTED;
	n = json_dumpb(root, NULL, 0, JSON_COMPACT);
	buf = n > 0 ? alloc(alloc_arg, n + 1) : NULL;
	if (buf == NULL) {
		json_decref(root);
		return ST_RESOURCE_EXHAUSTED;
	}
	(void)json_dumpb(root, (char *)buf, n, JSON_COMPACT);
	buf[n] = '\n';
	json_decref(root);
	return ST_OK;
}

/* The reply to a statement: its result, or its error. */
static enum status
text_reply(const pb_statement_reply *rep, const struct outcome *oc, reply_alloc_fn alloc,
    void *alloc_arg)
{
	json_t *root;

	if (oc->status == ST_OK) {
		root = result_json(rep);
		if (root != NULL)
			return emit(root, alloc, alloc_arg);
	}
	if (oc->status == ST_OK) {
		struct outcome nomem;

		outcome_set(&nomem, ST_RESOURCE_EXHAUSTED, "NO_MEMORY", "out of memory");
		return emit(error_json(&nomem), alloc, alloc_arg);
	}
	return emit(error_json(oc), alloc, alloc_arg);
}

/* What a text reply needs when it is made after a parked write (service_park_ctx). */
struct text_cont {
	pb_statement_reply rep;
	const struct outcome *oc;
	reply_alloc_fn alloc;
	void *alloc_arg;
};

static void
text_reply_parked(void *ctx)
{
	struct text_cont *c = ctx;

	(void)text_reply(&c->rep, c->oc, c->alloc, c->alloc_arg);
}

enum status
text_handle(struct service *svc, struct caller *caller, const uint8_t *frame, size_t len,
    struct arena *a, reply_alloc_fn alloc, void *alloc_arg, struct call_info *info)
{
	struct outcome *oc = &info->outcome;
	pb_statement stmt = SECRETD__V1__STATEMENT__INIT;
	pb_statement_reply rep = SECRETD__V1__STATEMENT_REPLY__INIT;
	struct request rq = {svc, caller, a, info};
	const uint8_t *nul;
	const char *text = (const char *)frame;
	size_t text_len = len;
	char *token = NULL;

	info->method = "Execute";
	if (len > svc->limits.max_frame) {
		outcome_set(oc, ST_RESOURCE_EXHAUSTED, "FRAME_TOO_LARGE",
		    "statement of %zu bytes is over the frame limit of %zu bytes", len,
		    svc->limits.max_frame);
		goto error;
	}
	nul = memchr(frame, 0, len);
	if (nul != NULL) {
		outcome_set(oc, ST_INVALID_ARGUMENT, "BAD_TEXT",
		    "NUL byte at offset %td in the statement text", nul - frame);
		goto error;
	}
	if (!utf8_valid(frame, len)) {
		outcome_set(
		    oc, ST_INVALID_ARGUMENT, "BAD_TEXT", "the statement text is not valid UTF-8");
		goto error;
	}
	if (len >= 5 && strncasecmp(text, "AUTH ", 5) == 0) {
		const char *nl = memchr(text, '\n', len);
		size_t tlen;

		if (nl == NULL) {
			outcome_set(oc, ST_INVALID_ARGUMENT, "SYNTAX",
			    "the AUTH line must end with a newline before the statement");
			goto error;
		}
		tlen = (size_t)(nl - text) - 5;
		if (tlen > 0 && text[5 + tlen - 1] == '\r')
			tlen--;
		token = arena_strndup(a, text + 5, tlen);
		if (token == NULL)
			goto nomem;
		text_len = len - (size_t)(nl + 1 - text);
		text = nl + 1;
	}
	service_authenticate(svc, caller, token);
	if (caller->role == ROLE_NONE) {
		outcome_set(oc, ST_UNAUTHENTICATED, token != NULL ? "BAD_TOKEN" : "NO_TOKEN",
		    token != NULL
		        ? "the token is not valid"
		        : "this connection needs a token: send a line `AUTH <token>` first");
		goto error;
	}
	stmt.text = arena_strndup(a, text, text_len);
	if (stmt.text == NULL)
		goto nomem;
	(void)handle_execute(&rq, &stmt.base, &rep.base);
	if (info->park != NULL) {
		struct text_cont *c = service_park_ctx(info);

		static_assert(sizeof(*c) <= SERVICE_PARK_CTX, "SERVICE_PARK_CTX is too small");
		*c = (struct text_cont){rep, oc, alloc, alloc_arg};
		if (!service_park_arm(info, text_reply_parked, c))
			return ST_OK;
	}
	return text_reply(&rep, oc, alloc, alloc_arg);
nomem:
	outcome_set(oc, ST_RESOURCE_EXHAUSTED, "NO_MEMORY", "out of memory");
error:
	return emit(error_json(oc), alloc, alloc_arg);
}

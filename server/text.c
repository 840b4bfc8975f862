/*
 * text.c: text frames in, JSON out: the text codec (codec.h). See text.h. Replies are written by
 * the small JSON writer below straight into the reply buffer (jansson dumped each reply twice and
 * checked every code point twice: ~190,000 instructions of a 1 KiB GET SECRET); it is proven to
 * write jansson's bytes by tests/unit/test_text_json.c. jansson stays for the audit trail,
 * and text_init still gives it the wiping allocator.
 */
#include "text.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec.h"
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

/* A reply's storage by name: storage_name when the server set it ("etcd" on a cluster
 * node), else the enum's name (NULL for none). */
static const char *
storage_named(int storage, const char *name)
{
	return name != NULL && name[0] != '\0' && storage_json(storage) != NULL ? name
	                                                                      : storage_json(storage);
}

/*
 * The JSON writer. A reply is rendered twice by the same code: once with out == NULL to
 * count its bytes, then into the reply buffer of exactly that size. Nothing is built in
 * between, so no other buffer ever holds a value (the reply buffer is wiped like every
 * reply). The bytes are those jansson's json_dumpb(JSON_COMPACT) writes for the same
 * object (tests/unit/test_text_json.c compares them byte for byte, and parses every reply
 * shape back with jansson): keys in insertion order, '"' and '\\' escaped, control
 * characters as \b \f \n \r \t or \u00XX, everything else (UTF-8 too) as is. A string that
 * is not valid UTF-8 (never one a handler let through; a message cut at its 512-byte limit
 * could be) has each bad byte written as U+FFFD, where jansson would refuse the whole reply.
 */
struct jw {
	uint8_t *out; /* NULL: count only */
	size_t n;
};

/* Extra bytes each ASCII byte takes when escaped (0: written as is). */
static const uint8_t json_extra[128] = {
    5, 5, 5, 5, 5, 5, 5, 5, 1, 1, 1, 5, 1, 1, 5, 5, /* \b \t \n \f \r: 2 bytes */
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, /* other controls: \u00XX */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, /* '\\' */
};

static void
jw_raw(struct jw *w, const char *s, size_t len)
{
	if (w->out != NULL)
		memcpy(w->out + w->n, s, len);
	w->n += len;
}

#define JW_LIT(w, lit) jw_raw((w), (lit), sizeof(lit) - 1)

/* The length of the valid UTF-8 sequence at s[0..len) (s[0] >= 0x80), or 0. */
static size_t
utf8_seq(const uint8_t *s, size_t len)
{
	uint8_t c = s[0];
	size_t n;
	uint32_t cp, min;

	if ((c & 0xE0) == 0xC0) {
		n = 2;
		cp = c & 0x1F;
		min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		n = 3;
		cp = c & 0x0F;
		min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		n = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t k = 1; k < n; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3F);
	}
	return cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ? 0 : n;
}

/* The escape of ASCII byte c (json_extra[c] > 0) at o. */
static void
escape_at(uint8_t *o, uint8_t c)
{
	static const char hex[] = "0123456789ABCDEF";

	o[0] = '\\';
	switch (c) {
	case '"':
	case '\\':
		o[1] = c;
		break;
	case '\b':
		o[1] = 'b';
		break;
	case '\f':
		o[1] = 'f';
		break;
	case '\n':
		o[1] = 'n';
		break;
	case '\r':
		o[1] = 'r';
		break;
	case '\t':
		o[1] = 't';
		break;
	default:
		memcpy(o + 1, "u00", 3);
		o[4] = (uint8_t)hex[c >> 4];
		o[5] = (uint8_t)hex[c & 15];
		break;
	}
}

/* Whether none of the 8 bytes at s needs escaping or UTF-8 checking: no byte below 0x20,
 * none equal to '"' or '\\', none at or above 0x80. Word-at-a-time tests (each is exact
 * about whether some byte matches, which is all that is asked here). */
static bool
plain8(const uint8_t *s)
{
	const uint64_t ones = 0x0101010101010101u;
	const uint64_t high = 0x8080808080808080u;
	uint64_t v, q, b;

	memcpy(&v, s, sizeof(v));
	q = v ^ (ones * '"');
	b = v ^ (ones * '\\');
	return (((v - ones * 0x20) | (q - ones) | (b - ones)) & ~v & high) == 0 && (v & high) == 0;
}

/* A JSON string of s[0..len), quoted and escaped. */
static void
jw_str(struct jw *w, const char *str, size_t len)
{
	const uint8_t *s = (const uint8_t *)str;
	size_t i = 0;

	JW_LIT(w, "\"");
	while (i < len) {
		size_t run = i;
		uint8_t c;

		/* The common case: a run of bytes written as they are, 8 at a time. */
		while (len - run >= 8 && plain8(s + run))
			run += 8;
		while (run < len && s[run] < 0x80 && json_extra[s[run]] == 0)
			run++;
		jw_raw(w, (const char *)s + i, run - i);
		i = run;
		if (i == len)
			break;
		c = s[i];
		if (c >= 0x80) {
			size_t k = utf8_seq(s + i, len - i);

			if (k == 0)
				JW_LIT(w, "\xEF\xBF\xBD");
			else
				jw_raw(w, (const char *)s + i, k);
			i += k == 0 ? 1 : k;
			continue;
		}
		if (w->out != NULL)
			escape_at(w->out + w->n, c);
		w->n += 1u + json_extra[c];
		i++;
	}
	JW_LIT(w, "\"");
}

static void
jw_cstr(struct jw *w, const char *s)
{
	jw_str(w, s, strlen(s));
}

/* ,"key": (no comma before the first member: first). */
static void
jw_key(struct jw *w, const char *key, bool first)
{
	if (!first)
		JW_LIT(w, ",");
	jw_cstr(w, key);
	JW_LIT(w, ":");
}

static void
jw_bool(struct jw *w, bool v)
{
	if (v)
		JW_LIT(w, "true");
	else
		JW_LIT(w, "false");
}

static void
jw_scope(struct jw *w, char **scope, size_t n)
{
	JW_LIT(w, "[");
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			JW_LIT(w, ",");
		jw_cstr(w, scope[i]);
	}
	JW_LIT(w, "]");
}

/* Cluster mode only (README "Running secretd as a cluster"): ,"node":"n1" for a temporary
 * secret (it lives on that node alone), ,"node":null for one in etcd (on every node). One
 * machine's objects keep exactly the keys of SPEC section 4. */
static void
jw_node(struct jw *w, const char *storage, const char *node)
{
	if (node != NULL && node[0] != '\0') {
		jw_key(w, "node", false);
		jw_cstr(w, node);
	} else if (storage != NULL && strcmp(storage, "etcd") == 0) {
		jw_key(w, "node", false);
		JW_LIT(w, "null");
	}
}

static void
jw_row(struct jw *w, const pb_row *r)
{
	jw_key(w, "name", true);
	jw_cstr(w, r->name);
	jw_key(w, "type", false);
	jw_cstr(w, r->type);
	jw_key(w, "provider", false);
	jw_cstr(w, r->provider);
	jw_key(w, "persistent", false);
	jw_bool(w, r->persistent);
	jw_key(w, "storage", false);
	jw_cstr(w, r->storage);
	jw_key(w, "scope", false);
	jw_scope(w, r->scope, r->n_scope);
	jw_key(w, "secret_string", false);
	jw_cstr(w, r->secret_string);
	jw_node(w, r->storage, r->node);
}

static void
jw_secret(struct jw *w, const pb_secret *s)
{
	jw_key(w, "name", true);
	jw_cstr(w, s->name);
	jw_key(w, "type", false);
	jw_cstr(w, s->type);
	jw_key(w, "provider", false);
	jw_cstr(w, s->provider);
	jw_key(w, "persistent", false);
	jw_bool(w, s->storage == PB_STORAGE_SQLCIPHER);
	jw_key(w, "storage", false);
	jw_cstr(w, storage_named(s->storage, s->storage_name));
	jw_key(w, "scope", false);
	jw_scope(w, s->scope, s->n_scope);
	jw_key(w, "fields", false);
	JW_LIT(w, "{");
	for (size_t i = 0; i < s->n_fields; i++) {
		jw_key(w, s->fields[i]->key, i == 0);
		jw_str(w, (const char *)s->fields[i]->value.data, s->fields[i]->value.len);
	}
	JW_LIT(w, "}");
	jw_node(w, storage_named(s->storage, s->storage_name), s->node);
}

/* Whether a successful reply can be written (every string it names is there). */
static bool
result_complete(const pb_statement_reply *rep)
{
	switch (rep->kind) {
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_CREATED:
		return rep->created != NULL && storage_json(rep->created->storage) != NULL;
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_DROPPED:
		return rep->dropped != NULL;
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_ROWS:
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_RESOLVED:
		return true;
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_SECRET:
		return rep->secret != NULL && storage_json(rep->secret->storage) != NULL;
	default:
		return false;
	}
}

/* The JSON object of a successful statement (result_complete(rep) holds). */
static void
jw_result(struct jw *w, const pb_statement_reply *rep)
{
	const char *storage;

	JW_LIT(w, "{\"status\":\"OK\",");
	switch (rep->kind) {
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_CREATED:
		jw_key(w, "name", true);
		jw_cstr(w, rep->created->name);
		jw_key(w, "storage", false);
		storage = storage_named(rep->created->storage, rep->created->storage_name);
		jw_cstr(w, storage);
		jw_node(w, storage, rep->created->node);
		break;
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_DROPPED:
		jw_key(w, "name", true);
		jw_cstr(w, rep->dropped->name);
		jw_key(w, "storage", false);
		storage = storage_named(rep->dropped->storage, rep->dropped->storage_name);
		if (storage != NULL)
			jw_cstr(w, storage);
		else
			JW_LIT(w, "null"); /* DROP ... IF EXISTS of a name held nowhere */
		jw_node(w, storage, rep->dropped->node);
		break;
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_ROWS:
		JW_LIT(w, "\"rows\":[");
		for (size_t i = 0; i < rep->n_rows; i++) {
			if (i > 0)
				JW_LIT(w, ",");
			JW_LIT(w, "{");
			jw_row(w, rep->rows[i]);
			JW_LIT(w, "}");
		}
		JW_LIT(w, "]");
		break;
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_RESOLVED:
		JW_LIT(w, "\"rows\":[");
		for (size_t i = 0; i < rep->n_resolved; i++) {
			if (i > 0)
				JW_LIT(w, ",");
			JW_LIT(w, "{");
			jw_key(w, "name", true);
			jw_cstr(w, rep->resolved[i]->name);
			jw_key(w, "persistent", false);
			jw_cstr(w, rep->resolved[i]->persistent);
			jw_key(w, "storage", false);
			jw_cstr(w, rep->resolved[i]->storage);
			jw_node(w, rep->resolved[i]->storage, rep->resolved[i]->node);
			JW_LIT(w, "}");
		}
		JW_LIT(w, "]");
		break;
	default: /* KIND_SECRET */
		JW_LIT(w, "\"secret\":{");
		jw_secret(w, rep->secret);
		JW_LIT(w, "}");
		break;
	}
	JW_LIT(w, "}\n");
}

static void
jw_error(struct jw *w, const struct outcome *oc)
{
	JW_LIT(w, "{");
	jw_key(w, "status", true);
	jw_cstr(w, status_str(oc->status));
	jw_key(w, "reason", false);
	jw_cstr(w, oc->reason != NULL ? oc->reason : "");
	jw_key(w, "message", false);
	jw_cstr(w, oc->message);
	JW_LIT(w, "}\n");
}

enum status
text_render(
    const pb_statement_reply *rep, const struct outcome *oc, reply_alloc_fn alloc, void *alloc_arg)
{
	struct outcome internal;
	struct jw w = {NULL, 0};
	bool ok = oc->status == ST_OK && result_complete(rep);

	if (oc->status == ST_OK && !ok) {
		outcome_set(
		    &internal, ST_INTERNAL, REASON_RENDER, "the reply could not be rendered");
		oc = &internal;
	}
	if (ok)
		jw_result(&w, rep);
	else
		jw_error(&w, oc);
	w.out = alloc(alloc_arg, w.n);
	if (w.out == NULL)
		return ST_RESOURCE_EXHAUSTED;
	w.n = 0;
	if (ok)
		jw_result(&w, rep);
	else
		jw_error(&w, oc);
	return ST_OK;
}

/* Encode a reply (codec.h): the statement's result, or the error object. */
static enum status
text_encode(const struct reply_args *r)
{
	static const pb_statement_reply none = SECRETD__V1__STATEMENT_REPLY__INIT;
	const struct outcome *oc = &r->info->outcome;
	const pb_statement_reply *rep = &none;

	/* A text frame only ever runs Execute, so a result is a StatementReply. */
	if (r->out != NULL && r->out->descriptor == &secretd__v1__statement_reply__descriptor)
		rep = (const pb_statement_reply *)r->out;
	return text_render(rep, oc, r->alloc, r->alloc_arg);
}

/*
 * Decode a text frame (codec.h): the statement, with no NUL byte and valid UTF-8, after
 * an optional first line `AUTH <token>` (the token is everything after "AUTH " up to the
 * newline, a trailing CR dropped). The input is built here (a Statement), so there is no
 * body to unpack.
 */
static enum status
text_decode(const struct service *svc, const uint8_t *frame, size_t len, struct arena *a,
    struct decoded *d, struct outcome *oc)
{
	pb_statement *stmt;
	const uint8_t *nul;
	const char *text = (const char *)frame;
	size_t text_len = len;

	d->method = dispatch_find(&svc->dispatch, text_codec.method);
	if (d->method == NULL) /* service_init was not called */
		return outcome_set(
		    oc, ST_UNIMPLEMENTED, REASON_UNKNOWN_METHOD, "text frames have no handler");
	nul = memchr(frame, 0, len);
	if (nul != NULL)
		return outcome_set(oc, ST_INVALID_ARGUMENT, REASON_BAD_TEXT,
		    "NUL byte at offset %td in the statement text", nul - frame);
	if (!utf8_valid(frame, len))
		return outcome_set(oc, ST_INVALID_ARGUMENT, REASON_BAD_TEXT,
		    "the statement text is not valid UTF-8");
	if (len >= 5 && strncasecmp(text, "AUTH ", 5) == 0) {
		const char *nl = memchr(text, '\n', len);
		size_t tlen;

		if (nl == NULL)
			return outcome_set(oc, ST_INVALID_ARGUMENT, REASON_SYNTAX,
			    "the AUTH line must end with a newline before the statement");
		tlen = (size_t)(nl - text) - 5;
		if (tlen > 0 && text[5 + tlen - 1] == '\r')
			tlen--;
		d->token = arena_strndup(a, text + 5, tlen);
		if (d->token == NULL)
			goto nomem;
		text_len = len - (size_t)(nl + 1 - text);
		text = nl + 1;
	}
	stmt = arena_alloc(a, sizeof(*stmt));
	if (stmt == NULL)
		goto nomem;
	secretd__v1__statement__init(stmt);
	stmt->text = arena_strndup(a, text, text_len);
	if (stmt->text == NULL)
		goto nomem;
	d->in = &stmt->base;
	return ST_OK;
nomem:
	return outcome_set(oc, ST_RESOURCE_EXHAUSTED, REASON_NO_MEMORY, "out of memory");
}

const struct codec text_codec = {
    .decode = text_decode,
    .encode = text_encode,
    .no_token_message = "this connection needs a token: send a line `AUTH <token>` first",
    .method = "Execute",
};

/*
 * test_text_json.c: the text frames' JSON writer (server/text.c: text_render) writes the
 * same bytes as jansson's json_dumpb(JSON_COMPACT) of the same object, for every reply
 * shape of SPEC section 4 (created, dropped, dropped-if-exists with a null storage, rows,
 * resolved rows, secret, every error status), for strings holding every escape (each
 * control character, quote, backslash, slash, DEL, 2- to 4-byte UTF-8), a 1 KiB value,
 * each special byte at each offset of an 8-byte word, and 100 random strings, each in every
 * shape (about 7,000 replies); each reply is also parsed back with jansson and compared as
 * a JSON value.
 * A string that is not valid UTF-8 (jansson refuses it) comes out as valid JSON with
 * U+FFFD in place of each bad byte.
 *
 * The reference objects are built here with jansson as text.c built them before it had
 * its own writer.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pb.h"
#include "text.h"

struct buf {
	uint8_t *p;
	size_t len;
};

static uint8_t *
test_alloc(void *arg, size_t len)
{
	struct buf *b = arg;

	free(b->p);
	b->p = malloc(len + 1);
	b->len = len;
	return b->p;
}

static const char *
storage_str(int storage)
{
	return storage == PB_STORAGE_MEMORY      ? "memory"
	       : storage == PB_STORAGE_SQLCIPHER ? "sqlcipher"
	                                         : NULL;
}

static json_t *
ref_scope(char **scope, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		(void)json_array_append_new(a, json_string(scope[i]));
	return a;
}

/* The reference: the object jansson builds for rep/oc (NULL when jansson refuses). */
static json_t *
reference(const pb_statement_reply *rep, const struct outcome *oc)
{
	json_t *rows;

	if (oc->status != ST_OK)
		return json_pack("{s:s, s:s, s:s}", "status", status_str(oc->status), "reason",
		    oc->reason, "message", oc->message);
	switch (rep->kind) {
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_CREATED:
		return json_pack("{s:s, s:s, s:s}", "status", "OK", "name", rep->created->name,
		    "storage", storage_str(rep->created->storage));
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_DROPPED:
		return json_pack("{s:s, s:s, s:s?}", "status", "OK", "name", rep->dropped->name,
		    "storage", storage_str(rep->dropped->storage));
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_ROWS:
		rows = json_array();
		for (size_t i = 0; i < rep->n_rows; i++) {
			const pb_row *r = rep->rows[i];

			(void)json_array_append_new(
			    rows, json_pack("{s:s, s:s, s:s, s:b, s:s, s:o, s:s}", "name", r->name,
			              "type", r->type, "provider", r->provider, "persistent",
			              r->persistent, "storage", r->storage, "scope",
			              ref_scope(r->scope, r->n_scope), "secret_string",
			              r->secret_string));
		}
		return json_pack("{s:s, s:o}", "status", "OK", "rows", rows);
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_RESOLVED:
		rows = json_array();
		for (size_t i = 0; i < rep->n_resolved; i++)
			(void)json_array_append_new(
			    rows, json_pack("{s:s, s:s, s:s}", "name", rep->resolved[i]->name,
			              "persistent", rep->resolved[i]->persistent, "storage",
			              rep->resolved[i]->storage));
		return json_pack("{s:s, s:o}", "status", "OK", "rows", rows);
	default: {
		const pb_secret *s = rep->secret;
		json_t *fields = json_object();

		for (size_t i = 0; i < s->n_fields; i++)
			(void)json_object_set_new(fields, s->fields[i]->key,
			    json_stringn(
			        (const char *)s->fields[i]->value.data, s->fields[i]->value.len));
		return json_pack("{s:s, s:{s:s, s:s, s:s, s:b, s:s, s:o, s:o}}", "status", "OK",
		    "secret", "name", s->name, "type", s->type, "provider", s->provider,
		    "persistent", s->storage == PB_STORAGE_SQLCIPHER, "storage",
		    storage_str(s->storage), "scope", ref_scope(s->scope, s->n_scope), "fields",
		    fields);
	}
	}
}

static int shapes_checked;

/* text_render(rep, oc) must equal jansson's bytes and parse back to the same value. */
static void
check_same(const pb_statement_reply *rep, const struct outcome *oc, const char *what)
{
	struct buf b = {NULL, 0};
	json_t *ref = reference(rep, oc);
	json_t *back = NULL;
	json_error_t err;
	size_t n;
	char *want = NULL;

	CHECK_STATUS(text_render(rep, oc, test_alloc, &b), ST_OK);
	CHECK(ref != NULL);
	if (ref == NULL || b.p == NULL)
		goto out;
	n = json_dumpb(ref, NULL, 0, JSON_COMPACT);
	want = malloc(n + 1);
	(void)json_dumpb(ref, want, n, JSON_COMPACT);
	want[n] = '\n';
	CHECK(b.len == n + 1 && memcmp(b.p, want, n + 1) == 0);
	if (b.len != n + 1 || memcmp(b.p, want, n + 1) != 0)
		(void)fprintf(stderr, "  shape %s: %zu bytes, jansson %zu\n", what, b.len, n + 1);
	back = json_loadb((const char *)b.p, b.len, 0, &err);
	CHECK(back != NULL && json_equal(back, ref));
	shapes_checked++;
out:
	json_decref(back);
	json_decref(ref);
	free(want);
	free(b.p);
}

static struct outcome
ok_outcome(void)
{
	struct outcome oc = {ST_OK, "", "OK"};

	return oc;
}

/* One reply of each kind whose strings are all s (a valid UTF-8 C string). */
static void
check_all_shapes(const char *s, const char *what)
{
	struct outcome ok = ok_outcome();
	pb_statement_reply rep = SECRETD__V1__STATEMENT_REPLY__INIT;
	pb_create_reply cr = SECRETD__V1__SECRET_CREATE_REPLY__INIT;
	pb_drop_reply dr = SECRETD__V1__SECRET_DROP_REPLY__INIT;
	pb_row r1 = SECRETD__V1__SECRET_ROW__INIT, r2 = SECRETD__V1__SECRET_ROW__INIT;
	pb_row *rows[2] = {&r1, &r2};
	pb_resolve_row rr = SECRETD__V1__RESOLVE_ROW__INIT;
	pb_resolve_row *rrs[1] = {&rr};
	pb_secret sec = SECRETD__V1__SECRET__INIT;
	pb_field f1 = SECRETD__V1__FIELD__INIT, f2 = SECRETD__V1__FIELD__INIT;
	pb_field *fields[2] = {&f1, &f2};
	char *scope2[2] = {(char *)s, (char *)"openai://"};
	struct outcome err;

	cr.name = (char *)s;
	cr.storage = PB_STORAGE_SQLCIPHER;
	rep.kind = SECRETD__V1__STATEMENT_REPLY__KIND__KIND_CREATED;
	rep.created = &cr;
	check_same(&rep, &ok, what);

	dr.name = (char *)s;
	dr.storage = PB_STORAGE_MEMORY;
	rep.kind = SECRETD__V1__STATEMENT_REPLY__KIND__KIND_DROPPED;
	rep.dropped = &dr;
	check_same(&rep, &ok, what);
	dr.storage = PB_STORAGE_ANY; /* DROP ... IF EXISTS of nothing: "storage":null */
	check_same(&rep, &ok, what);

	r1.name = (char *)s;
	r1.type = (char *)"openai";
	r1.provider = (char *)"config";
	r1.persistent = true;
	r1.storage = (char *)"sqlcipher";
	r1.n_scope = 2;
	r1.scope = scope2;
	r1.secret_string = (char *)s;
	r2 = r1;
	r2.persistent = false;
	r2.n_scope = 0;
	rep.kind = SECRETD__V1__STATEMENT_REPLY__KIND__KIND_ROWS;
	for (size_t n = 0; n <= 2; n++) {
		rep.n_rows = n;
		rep.rows = rows;
		check_same(&rep, &ok, what);
	}

	rr.name = (char *)s;
	rr.persistent = (char *)"TEMPORARY";
	rr.storage = (char *)"memory";
	rep.kind = SECRETD__V1__STATEMENT_REPLY__KIND__KIND_RESOLVED;
	rep.n_resolved = 0;
	rep.resolved = rrs;
	check_same(&rep, &ok, what);
	rep.n_resolved = 1;
	check_same(&rep, &ok, what);

	f1.key = (char *)"api_key";
	f1.value.data = (uint8_t *)s;
	f1.value.len = strlen(s);
	f2.key = (char *)"base_url";
	f2.value.data = (uint8_t *)"";
	f2.value.len = 0;
	sec.name = (char *)s;
	sec.type = (char *)"openai";
	sec.provider = (char *)"config";
	sec.storage = PB_STORAGE_MEMORY;
	sec.n_scope = 1;
	sec.scope = scope2;
	rep.kind = SECRETD__V1__STATEMENT_REPLY__KIND__KIND_SECRET;
	rep.secret = &sec;
	for (size_t n = 0; n <= 2; n++) {
		sec.n_fields = n;
		sec.fields = fields;
		sec.storage = n == 1 ? PB_STORAGE_SQLCIPHER : PB_STORAGE_MEMORY;
		check_same(&rep, &ok, what);
	}

	for (int st = 1; st <= 16; st++) {
		err.status = (enum status)st;
		err.reason = st % 2 == 0 ? "" : "SYNTAX";
		(void)snprintf(err.message, sizeof(err.message), "%s", s);
		check_same(&rep, &err, what);
	}
}

/* A random valid UTF-8 string of up to max code points, every kind of byte likely. */
static void
random_string(char *out, size_t max, unsigned *seed)
{
	size_t n = (size_t)rand_r(seed) % max, o = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t cp;

		switch (rand_r(seed) % 6) {
		case 0:
			cp = 1 + (uint32_t)rand_r(seed) % 0x1F; /* a control character */
			break;
		case 1:
			cp = "\"\\/\x7f"[rand_r(seed) % 4];
			break;
		case 2:
			cp = 0x80 + (uint32_t)rand_r(seed) % (0x800 - 0x80);
			break;
		case 3:
			cp = 0x800 + (uint32_t)rand_r(seed) % (0xD800 - 0x800);
			break;
		case 4:
			cp = 0x10000 + (uint32_t)rand_r(seed) % (0x110000 - 0x10000);
			break;
		default:
			cp = 0x20 + (uint32_t)rand_r(seed) % 0x5F;
			break;
		}
		if (cp < 0x80) {
			out[o++] = (char)cp;
		} else if (cp < 0x800) {
			out[o++] = (char)(0xC0 | (cp >> 6));
			out[o++] = (char)(0x80 | (cp & 0x3F));
		} else if (cp < 0x10000) {
			out[o++] = (char)(0xE0 | (cp >> 12));
			out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
			out[o++] = (char)(0x80 | (cp & 0x3F));
		} else {
			out[o++] = (char)(0xF0 | (cp >> 18));
			out[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
			out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
			out[o++] = (char)(0x80 | (cp & 0x3F));
		}
	}
	out[o] = '\0';
}

/* An error message that is not valid UTF-8: valid JSON all the same, U+FFFD for the bad
 * bytes. */
static void
check_invalid_utf8(void)
{
	static const char *const bad[] = {"cut \xE2\x82", "lone \x80 byte", "\xC0\xAF overlong",
	    "surrogate \xED\xA0\x80", "\xF5\x80\x80\x80 too big", "\xFF"};
	pb_statement_reply rep = SECRETD__V1__STATEMENT_REPLY__INIT;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct outcome oc = {ST_INVALID_ARGUMENT, "SYNTAX", ""};
		struct buf b = {NULL, 0};
		json_error_t err;
		json_t *back;

		(void)snprintf(oc.message, sizeof(oc.message), "%s", bad[i]);
		CHECK_STATUS(text_render(&rep, &oc, test_alloc, &b), ST_OK);
		back = b.p != NULL ? json_loadb((const char *)b.p, b.len, 0, &err) : NULL;
		CHECK(back != NULL);
		CHECK(back != NULL && strstr(json_string_value(json_object_get(back, "message")),
		                          "\xEF\xBF\xBD") != NULL);
		json_decref(back);
		free(b.p);
	}
}

int
main(void)
{
	char every_escape[256];
	char big[2048];
	char rnd[8 * 64 + 1];
	unsigned seed = 11;
	size_t n = 0;

	for (int c = 1; c < 0x20; c++)
		every_escape[n++] = (char)c;
	(void)snprintf(every_escape + n, sizeof(every_escape) - n, "%s",
	    "\"\\/\x7f aZ\xC3\xA9\xE2\x82\xAC\xF0\x9F\x94\x91");

	check_all_shapes("plain", "plain");
	check_all_shapes("", "empty");
	check_all_shapes(every_escape, "every escape");
	memset(big, 'k', 1024);
	big[1024] = '\0';
	check_all_shapes(big, "1 KiB");
	/* Each special byte at each offset of the 8-byte words the writer scans. */
	for (size_t pos = 0; pos < 18; pos++) {
		static const char *const specials[] = {
		    "\x01", "\x1f", "\"", "\\", "\x7f", " ", "~", "\xC3\xA9", "\xF0\x9F\x94\x91"};

		for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]); k++) {
			char str[64];

			memset(str, 'a', 20);
			str[20] = '\0';
			(void)snprintf(str + pos, sizeof(str) - pos, "%s%.*s", specials[k],
			    (int)(20 - pos), "bbbbbbbbbbbbbbbbbbbb");
			check_all_shapes(str, "special at an offset");
		}
	}
	for (int i = 0; i < 100; i++) {
		random_string(rnd, 64, &seed);
		check_all_shapes(rnd, "random");
	}
	check_invalid_utf8();
	(void)printf("%d replies compared with jansson's\n", shapes_checked);
	return check_report();
}

/*
 * results.c: the public results (secretd_secret, secretd_rows, secretd_result), each
 * ONE allocation that holds the struct, its arrays and every string, like a packed
 * struct. A result is built in two passes over the same code: the first only measures,
 * the second fills a block of exactly that size. The block's size is kept in a header
 * in front of it so that the free functions wipe the whole block before freeing it.
 *
 * Not here: any I/O. Pointers inside a secretd_result (rows, secret) point into the
 * result's block and are freed with it, never on their own.
 *
 * Thread safety: none needed; every function works on its own arguments.
 */
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

#define BLOB_HEADER (sizeof(max_align_t))

/* The builder: base NULL while measuring. */
struct blob {
	unsigned char *base;
	size_t off;
	bool overflow;
};

/* Reserve size bytes aligned to align; NULL while measuring. */
static void *
blob_reserve(struct blob *b, size_t size, size_t align)
{
	size_t off = (b->off + align - 1) & ~(align - 1);

	if (off < b->off || size > SIZE_MAX - off) {
		b->overflow = true;
		return NULL;
	}
	b->off = off + size;
	return b->base != NULL && !b->overflow ? b->base + off : NULL;
}

/* Reserve count elements of size each. */
static void *
blob_array(struct blob *b, size_t count, size_t size, size_t align)
{
	if (size != 0 && count > SIZE_MAX / size) {
		b->overflow = true;
		return NULL;
	}
	return blob_reserve(b, count * size, align);
}

/* Copy len bytes of s and a NUL. */
static const char *
blob_strn(struct blob *b, const void *s, size_t len)
{
	char *p;

	if (len == SIZE_MAX) {
		b->overflow = true;
		return NULL;
	}
	p = blob_reserve(b, len + 1, 1);
	if (p == NULL)
		return NULL;
	if (len > 0)
		memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* Copy a NUL-terminated string; protobuf-c gives "" for an unset string, but be safe. */
static const char *
blob_str(struct blob *b, const char *s)
{
	if (s == NULL)
		s = "";
	return blob_strn(b, s, strlen(s));
}

/* Allocate a block of size bytes with its size header; the body is zeroed. */
static void *
blob_alloc(size_t size)
{
	unsigned char *p;

	if (size > SIZE_MAX - BLOB_HEADER)
		return NULL;
	p = calloc(1, BLOB_HEADER + size);
	if (p == NULL)
		return NULL;
	memcpy(p, &size, sizeof(size));
	return p + BLOB_HEADER;
}

/* Wipe a whole block and free it (NULL-safe). */
static void
blob_free(void *body)
{
	unsigned char *p;
	size_t size;

	if (body == NULL)
		return;
	p = (unsigned char *)body - BLOB_HEADER;
	memcpy(&size, p, sizeof(size));
	explicit_bzero(p, BLOB_HEADER + size);
	free(p);
}

typedef void *(*blob_fill_fn)(struct blob *b, const void *in);

/* Run fill twice: measure, then build into one block handed out in *outp. */
static secretd_status
blob_build(blob_fill_fn fill, const void *in, void **outp)
{
	struct blob b = {.base = NULL};
	size_t size;
	void *out;

	(void)fill(&b, in);
	if (b.overflow)
		return SECRETD_RESOURCE_EXHAUSTED;
	size = b.off;
	b.base = blob_alloc(size > 0 ? size : 1);
	if (b.base == NULL)
		return SECRETD_RESOURCE_EXHAUSTED;
	b.off = 0;
	out = fill(&b, in);
	if (out == NULL || b.off != size) {
		blob_free(b.base);
		return SECRETD_INTERNAL;
	}
	*outp = out;
	return SECRETD_OK;
}

static int
field_cmp(const void *a, const void *b)
{
	const secretd_field *fa = a;
	const secretd_field *fb = b;

	return strcmp(fa->key, fb->key);
}

/* Lay out a list of strings: an array of pointers and the strings. */
static const char *const *
blob_strings(struct blob *b, size_t n, char *const *in)
{
	const char **out = blob_array(b, n, sizeof(*out), alignof(const char *));
	size_t i;

	for (i = 0; i < n; i++) {
		const char *s = blob_str(b, in[i]);

		if (out != NULL)
			out[i] = s;
	}
	return out;
}

/* Lay out a secret: struct, scope, fields (sorted by key) and their strings. */
static secretd_secret *
blob_secret(struct blob *b, const Secretd__V1__Secret *in)
{
	secretd_secret *out = blob_reserve(b, sizeof(*out), alignof(secretd_secret));
	secretd_field *fields;
	const char *const *scope;
	const char *name, *type, *provider, *storage_name, *node;
	size_t i;

	fields = blob_array(b, in->n_fields, sizeof(*fields), alignof(secretd_field));
	scope = blob_strings(b, in->n_scope, in->scope);
	name = blob_str(b, in->name);
	type = blob_str(b, in->type);
	provider = blob_str(b, in->provider);
	/* An older server names no storage: the enum's name then. */
	storage_name = blob_str(b, in->storage_name[0] != '\0'
	                               ? in->storage_name
	                               : secretd_storage_str(client_storage_from_pb(in->storage)));
	node = blob_str(b, in->node);
	for (i = 0; i < in->n_fields; i++) {
		const Secretd__V1__Field *f = in->fields[i];
		const char *key = blob_str(b, f->key);
		const char *value = blob_strn(b, f->value.data, f->value.len);

		if (fields != NULL)
			fields[i] =
			    (secretd_field){.key = key, .value = value, .value_len = f->value.len};
	}
	if (out == NULL)
		return NULL;
	if (in->n_fields > 1)
		qsort(fields, in->n_fields, sizeof(*fields), field_cmp);
	*out = (secretd_secret){
	    .name = name,
	    .type = type,
	    .provider = provider,
	    .storage = client_storage_from_pb(in->storage),
	    .scope = scope,
	    .n_scope = in->n_scope,
	    .fields = fields,
	    .n_fields = in->n_fields,
	    .storage_name = storage_name,
	    .node = node,
	};
	return out;
}

/* Lay out the rows of a listing after a secretd_rows header. */
struct rows_in {
	size_t n_rows;
	Secretd__V1__SecretRow *const *rows;
};

static secretd_rows *
blob_rows(struct blob *b, const struct rows_in *in)
{
	secretd_rows *out = blob_reserve(b, sizeof(*out), alignof(secretd_rows));
	secretd_row *rows = blob_array(b, in->n_rows, sizeof(*rows), alignof(secretd_row));
	size_t i;

	for (i = 0; i < in->n_rows; i++) {
		const Secretd__V1__SecretRow *r = in->rows[i];
		secretd_row row = {
		    .name = blob_str(b, r->name),
		    .type = blob_str(b, r->type),
		    .provider = blob_str(b, r->provider),
		    .persistent = r->persistent,
		    .storage = blob_str(b, r->storage),
		    .scope = NULL,
		    .n_scope = r->n_scope,
		    .secret_string = blob_str(b, r->secret_string),
		    .node = blob_str(b, r->node),
		};

		row.scope = blob_strings(b, r->n_scope, r->scope);
		if (rows != NULL)
			rows[i] = row;
	}
	if (out != NULL)
		*out = (secretd_rows){.rows = rows, .n_rows = in->n_rows};
	return out;
}

static void *
fill_secret(struct blob *b, const void *in)
{
	return blob_secret(b, in);
}

static void *
fill_rows(struct blob *b, const void *in)
{
	return blob_rows(b, in);
}

/* Lay out a statement result that client_result_build has checked. */
static void *
fill_result(struct blob *b, const void *arg)
{
	const Secretd__V1__StatementReply *in = arg;
	secretd_result *out = blob_reserve(b, sizeof(*out), alignof(secretd_result));
	secretd_result r = {.kind = 0};
	secretd_resolved_row *resolved;
	struct rows_in rows_in = {.n_rows = in->n_rows, .rows = in->rows};
	size_t i;

	switch (in->kind) {
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_CREATED:
		r.kind = SECRETD_RESULT_CREATED;
		if (in->created != NULL) {
			client_copy_str(r.created.name, sizeof(r.created.name), in->created->name);
			r.created.storage = client_storage_from_pb(in->created->storage);
			r.created.created = in->created->created;
			client_copy_str(r.created.storage_name, sizeof(r.created.storage_name),
			    in->created->storage_name);
			client_copy_str(r.created.node, sizeof(r.created.node), in->created->node);
		}
		break;
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_DROPPED:
		r.kind = SECRETD_RESULT_DROPPED;
		if (in->dropped != NULL) {
			client_copy_str(r.dropped.name, sizeof(r.dropped.name), in->dropped->name);
			r.dropped.storage = client_storage_from_pb(in->dropped->storage);
			r.dropped.dropped = in->dropped->dropped;
			client_copy_str(r.dropped.storage_name, sizeof(r.dropped.storage_name),
			    in->dropped->storage_name);
			client_copy_str(r.dropped.node, sizeof(r.dropped.node), in->dropped->node);
		}
		break;
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_ROWS:
		r.kind = SECRETD_RESULT_ROWS;
		r.rows = blob_rows(b, &rows_in);
		break;
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_RESOLVED:
		r.kind = SECRETD_RESULT_RESOLVED;
		resolved =
		    blob_array(b, in->n_resolved, sizeof(*resolved), alignof(secretd_resolved_row));
		for (i = 0; i < in->n_resolved; i++) {
			const Secretd__V1__ResolveRow *row = in->resolved[i];
			/* client_result_build checked it is one of the two. */
			secretd_resolved_row x = {
			    .name = blob_str(b, row->name),
			    .persistent = strcmp(row->persistent, "PERSISTENT") == 0,
			    .storage = blob_str(b, row->storage),
			    .node = blob_str(b, row->node),
			};

			if (resolved != NULL)
				resolved[i] = x;
		}
		r.resolved = resolved;
		r.n_resolved = in->n_resolved;
		break;
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_SECRET:
		r.kind = SECRETD_RESULT_SECRET;
		r.secret = blob_secret(b, in->secret);
		break;
	default:
		break;
	}
	if (out != NULL)
		*out = r;
	return out;
}

bool
client_name_fits(const char *name)
{
	return name == NULL || strnlen(name, SECRETD_NAME_MAX + 1) <= SECRETD_NAME_MAX;
}

secretd_status
client_secret_build(const Secretd__V1__Secret *in, secretd_secret **outp)
{
	void *out = NULL;
	secretd_status st = blob_build(fill_secret, in, &out);

	if (st == SECRETD_OK)
		*outp = out;
	return st;
}

secretd_status
client_rows_build(size_t n_rows, Secretd__V1__SecretRow *const *rows, secretd_rows **outp)
{
	struct rows_in in = {.n_rows = n_rows, .rows = rows};
	void *out = NULL;
	secretd_status st = blob_build(fill_rows, &in, &out);

	if (st == SECRETD_OK)
		*outp = out;
	return st;
}

secretd_status
client_result_build(const Secretd__V1__StatementReply *in, secretd_result **outp)
{
	void *out = NULL;
	secretd_status st;

	/* A malformed reply (unknown kind, SECRET without a secret, a name longer than a
	 * result holds, a which_secret row neither TEMPORARY nor PERSISTENT) is the server's
	 * fault; nothing is cut or guessed. */
	switch (in->kind) {
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_CREATED:
		if (in->created != NULL && !client_name_fits(in->created->name))
			return SECRETD_INTERNAL;
		break;
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_DROPPED:
		if (in->dropped != NULL && !client_name_fits(in->dropped->name))
			return SECRETD_INTERNAL;
		break;
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_ROWS:
		break;
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_RESOLVED:
		for (size_t i = 0; i < in->n_resolved; i++) {
			const char *p = in->resolved[i]->persistent;

			if (p == NULL ||
			    (strcmp(p, "PERSISTENT") != 0 && strcmp(p, "TEMPORARY") != 0))
				return SECRETD_INTERNAL;
		}
		break;
	case SECRETD__V1__STATEMENT_REPLY__KIND__KIND_SECRET:
		if (in->secret == NULL)
			return SECRETD_INTERNAL;
		break;
	default:
		return SECRETD_INTERNAL;
	}
	st = blob_build(fill_result, in, &out);
	if (st == SECRETD_OK)
		*outp = out;
	return st;
}

void
secretd_secret_free(secretd_secret *secret)
{
	blob_free(secret);
}

void
secretd_rows_free(secretd_rows *rows)
{
	blob_free(rows);
}

void
secretd_result_free(secretd_result *result)
{
	blob_free(result);
}

/* ASCII-only case-insensitive comparison: field keys are ASCII, and the locale must not
 * matter. */
static bool
ascii_case_equal(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned char ca = (unsigned char)*a;
		unsigned char cb = (unsigned char)*b;

		if (ca >= 'A' && ca <= 'Z')
			ca = (unsigned char)(ca - 'A' + 'a');
		if (cb >= 'A' && cb <= 'Z')
			cb = (unsigned char)(cb - 'A' + 'a');
		if (ca != cb)
			return false;
		if (ca == '\0')
			return true;
	}
}

const secretd_field *
secretd_secret_field(const secretd_secret *secret, const char *key)
{
	size_t i;

	if (secret == NULL || key == NULL)
		return NULL;
	for (i = 0; i < secret->n_fields; i++) {
		if (ascii_case_equal(secret->fields[i].key, key))
			return &secret->fields[i];
	}
	return NULL;
}

/* Move a pointer into a copied block: from inside src's block to the same place in dst's. */
static const void *
blob_move(const void *p, const void *src, void *dst)
{
	return p == NULL ? NULL
	                 : (const unsigned char *)dst +
	                       ((const unsigned char *)p - (const unsigned char *)src);
}

secretd_status
client_secret_dup(const secretd_secret *in, secretd_secret **outp)
{
	const unsigned char *head = (const unsigned char *)in - BLOB_HEADER;
	secretd_secret *out;
	const char **scope;
	secretd_field *fields;
	size_t size;

	/* A built secret is one block whose pointers all point inside it: copy the block
	 * and move each pointer by the distance between the two blocks. */
	memcpy(&size, head, sizeof(size));
	out = blob_alloc(size);
	if (out == NULL)
		return SECRETD_RESOURCE_EXHAUSTED;
	memcpy(out, in, size);
	out->name = blob_move(in->name, in, out);
	out->type = blob_move(in->type, in, out);
	out->provider = blob_move(in->provider, in, out);
	out->storage_name = blob_move(in->storage_name, in, out);
	out->node = blob_move(in->node, in, out);
	scope = (const char **)blob_move(in->scope, in, out);
	for (size_t i = 0; i < in->n_scope; i++)
		scope[i] = blob_move(in->scope[i], in, out);
	out->scope = scope;
	fields = (secretd_field *)blob_move(in->fields, in, out);
	for (size_t i = 0; i < in->n_fields; i++) {
		fields[i].key = blob_move(in->fields[i].key, in, out);
		fields[i].value = blob_move(in->fields[i].value, in, out);
	}
	out->fields = fields;
	out->stale = false;
	*outp = out;
	return SECRETD_OK;
}

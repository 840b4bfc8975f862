/*
 * row.c: encode and decode the body column of a secret's database row. See row.h for the
 * format and the contract; the decoder takes untrusted bytes.
 *
 * Thread safety: no shared state.
 */
#include "row.h"

#include <stdlib.h>
#include <string.h>

/* Bytes a body needs at the least per scope entry (len + NUL) and per field (key_len +
 * NUL + value_len): bounds the counts before anything is allocated. */
#define ROW_MIN_SCOPE 5
#define ROW_MIN_FIELD 9

static bool
add_len(size_t *total, size_t n)
{
	if (n > SIZE_MAX - *total)
		return false;
	*total += n;
	return true;
}

static uint8_t *
put_u32(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
	return p + 4;
}

static uint8_t *
put_bytes(uint8_t *p, const void *data, size_t len)
{
	p = put_u32(p, len);
	if (len > 0)
		memcpy(p, data, len);
	return p + len;
}

store_status
store_row_encode(const struct store_secret *s, uint8_t **bodyp, size_t *lenp)
{
	size_t total = 1 + 4 + 4;
	uint8_t *body;
	uint8_t *p;

	*bodyp = NULL;
	*lenp = 0;
	if (s->n_scope > UINT32_MAX || s->n_fields > UINT32_MAX)
		return STORE_INVALID;
	for (size_t i = 0; i < s->n_scope; i++) {
		size_t len = strlen(s->scope[i]) + 1;

		if (len > UINT32_MAX || !add_len(&total, 4) || !add_len(&total, len))
			return STORE_INVALID;
	}
	for (size_t i = 0; i < s->n_fields; i++) {
		size_t len = strlen(s->fields[i].key) + 1;

		if (len > UINT32_MAX || s->fields[i].value_len > UINT32_MAX ||
		    !add_len(&total, 8) || !add_len(&total, len) ||
		    !add_len(&total, s->fields[i].value_len))
			return STORE_INVALID;
	}
	body = malloc(total);
	if (body == NULL)
		return STORE_NO_MEMORY;
	p = body;
	*p++ = STORE_ROW_VERSION;
	p = put_u32(p, s->n_scope);
	for (size_t i = 0; i < s->n_scope; i++)
		p = put_bytes(p, s->scope[i], strlen(s->scope[i]) + 1);
	p = put_u32(p, s->n_fields);
	for (size_t i = 0; i < s->n_fields; i++) {
		p = put_bytes(p, s->fields[i].key, strlen(s->fields[i].key) + 1);
		p = put_bytes(p, s->fields[i].value, s->fields[i].value_len);
	}
	*bodyp = body;
	*lenp = total;
	return STORE_OK;
}

void
store_row_free(uint8_t *body, size_t len)
{
	if (body == NULL)
		return;
	explicit_bzero(body, len);
	free(body);
}

/* A cursor over untrusted bytes: every read checks what is left. */
struct reader {
	const uint8_t *p;
	size_t left;
};

static bool
get_u32(struct reader *r, size_t *vp)
{
	if (r->left < 4)
		return false;
	*vp =
	    (size_t)r->p[0] | (size_t)r->p[1] << 8 | (size_t)r->p[2] << 16 | (size_t)r->p[3] << 24;
	r->p += 4;
	r->left -= 4;
	return true;
}

/* A length-prefixed byte string; *lenp is its length. */
static bool
get_bytes(struct reader *r, const uint8_t **datap, size_t *lenp)
{
	size_t len;

	if (!get_u32(r, &len) || len > r->left)
		return false;
	*datap = r->p;
	*lenp = len;
	r->p += len;
	r->left -= len;
	return true;
}

/* A length-prefixed string whose only NUL is its last byte. */
static bool
get_string(struct reader *r, const char **strp)
{
	const uint8_t *data;
	size_t len;

	if (!get_bytes(r, &data, &len) || len == 0 || data[len - 1] != 0 ||
	    memchr(data, 0, len - 1) != NULL)
		return false;
	*strp = (const char *)data;
	return true;
}

store_status
store_row_decode(
    const uint8_t *body, size_t len, const char *name, const char *type, struct store_secret **outp)
{
	struct reader r = {.p = body, .left = len};
	const char **scope = NULL;
	struct store_field *fields = NULL;
	size_t n_scope;
	size_t n_fields;
	store_status rc = STORE_CORRUPT;

	*outp = NULL;
	if (name == NULL || type == NULL || (body == NULL && len > 0))
		goto fail;
	if (r.left < 1 || r.p[0] != STORE_ROW_VERSION)
		goto fail;
	r.p++;
	r.left--;
	if (!get_u32(&r, &n_scope) || n_scope > r.left / ROW_MIN_SCOPE)
		goto fail;
	rc = STORE_NO_MEMORY;
	scope = calloc(n_scope > 0 ? n_scope : 1, sizeof(*scope));
	if (scope == NULL)
		goto fail;
	rc = STORE_CORRUPT;
	for (size_t i = 0; i < n_scope; i++) {
		if (!get_string(&r, &scope[i]))
			goto fail;
	}
	if (!get_u32(&r, &n_fields) || n_fields > r.left / ROW_MIN_FIELD)
		goto fail;
	rc = STORE_NO_MEMORY;
	fields = calloc(n_fields > 0 ? n_fields : 1, sizeof(*fields));
	if (fields == NULL)
		goto fail;
	rc = STORE_CORRUPT;
	for (size_t i = 0; i < n_fields; i++) {
		if (!get_string(&r, &fields[i].key) ||
		    !get_bytes(&r, &fields[i].value, &fields[i].value_len))
			goto fail;
	}
	if (r.left != 0)
		goto fail;
	rc = store_secret_new(name, type, scope, n_scope, fields, n_fields, outp);
	if (rc == STORE_INVALID)
		rc = STORE_CORRUPT;
fail:
	/* Only pointers into body and lengths: nothing secret to wipe. */
	free(fields);
	free(scope);
	return rc;
}

/*
 * wire.c: request packing and in-place reply reading for the load generator. See wire.h.
 *
 * The reader understands just enough of the protobuf encoding (varints, length-delimited
 * fields, and skipping fixed32/fixed64) to walk the few messages the benchmark checks.
 * Anything it does not expect makes it fail, never guess.
 */
#include "wire.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t frame_header[WIRE_HEADER_LEN] = {0x00, 0x53, 0x44, 0x01};

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* One field of a protobuf message, as the walker returns it. */
struct pb_field {
	uint32_t number;
	uint32_t wire_type;
	uint64_t varint;        /* WT_VARINT */
	struct wire_bytes data; /* WT_LEN */
};

void
wire_buf_free(struct wire_buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	b->data = NULL;
	b->cap = 0;
}

static int
buf_reserve(struct wire_buf *b, size_t n)
{
	uint8_t *p;
	size_t cap = b->cap > 0 ? b->cap : 256;

	if (n <= b->cap)
		return 0;
	while (cap < n)
		cap *= 2;
	p = realloc(b->data, cap);
	if (p == NULL)
		return NNG_ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int
wire_request(const char *method, const ProtobufCMessage *body, const char *token,
    uint32_t timeout_ms, uint64_t request_id, struct wire_buf *scratch, nng_msg **msgp)
{
	Secretd__V1__Request env = SECRETD__V1__REQUEST__INIT;
	size_t body_len = protobuf_c_message_get_packed_size(body);
	size_t env_len;
	nng_msg *msg = NULL;
	int rv;

	if ((rv = buf_reserve(scratch, body_len + 1)) != 0)
		return rv;
	if (protobuf_c_message_pack(body, scratch->data) != body_len)
		return NNG_EINVAL;
	env.method = (char *)method;
	env.body.data = scratch->data;
	env.body.len = body_len;
	env.token = (char *)(token != NULL ? token : "");
	env.timeout_ms = timeout_ms;
	env.request_id = request_id;
	env_len = secretd__v1__request__get_packed_size(&env);
	if ((rv = nng_msg_alloc(&msg, WIRE_HEADER_LEN + env_len)) != 0)
		return rv;
	memcpy(nng_msg_body(msg), frame_header, WIRE_HEADER_LEN);
	if (secretd__v1__request__pack(&env, (uint8_t *)nng_msg_body(msg) + WIRE_HEADER_LEN) !=
	    env_len) {
		nng_msg_free(msg);
		return NNG_EINVAL;
	}
	*msgp = msg;
	return 0;
}

int
wire_text(const char *token, const char *statement, nng_msg **msgp)
{
	nng_msg *msg = NULL;
	int rv;

	if ((rv = nng_msg_alloc(&msg, 0)) != 0)
		return rv;
	if (token != NULL) {
		if ((rv = nng_msg_append(msg, "AUTH ", 5)) != 0 ||
		    (rv = nng_msg_append(msg, token, strlen(token))) != 0 ||
		    (rv = nng_msg_append(msg, "\n", 1)) != 0)
			goto fail;
	}
	if ((rv = nng_msg_append(msg, statement, strlen(statement))) != 0)
		goto fail;
	*msgp = msg;
	return 0;
fail:
	nng_msg_free(msg);
	return rv;
}

static bool
read_varint(const uint8_t **pp, const uint8_t *end, uint64_t *vp)
{
	const uint8_t *p = *pp;
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (p == end)
			return false;
		v |= (uint64_t)(*p & 0x7f) << shift;
		if ((*p++ & 0x80) == 0) {
			*pp = p;
			*vp = v;
			return true;
		}
	}
	return false;
}

/* Read the next field at *pp; false at the end (*pp == end) or on malformed input. */
static bool
next_field(const uint8_t **pp, const uint8_t *end, struct pb_field *f, bool *badp)
{
	uint64_t key;
	uint64_t n;

	*badp = false;
	f->varint = 0;
	f->data.data = NULL;
	f->data.len = 0;
	if (*pp == end)
		return false;
	if (!read_varint(pp, end, &key) || key >> 3 == 0 || key >> 3 > UINT32_MAX)
		goto bad;
	f->number = (uint32_t)(key >> 3);
	f->wire_type = (uint32_t)(key & 7);
	switch (f->wire_type) {
	case WT_VARINT:
		if (!read_varint(pp, end, &f->varint))
			goto bad;
		return true;
	case WT_LEN:
		if (!read_varint(pp, end, &n) || n > (uint64_t)(end - *pp))
			goto bad;
		f->data.data = *pp;
		f->data.len = (size_t)n;
		*pp += n;
		return true;
	case WT_I64:
	case WT_I32:
		n = f->wire_type == WT_I64 ? 8 : 4;
		if (n > (uint64_t)(end - *pp))
			goto bad;
		*pp += n;
		return true;
	default:
		goto bad;
	}
bad:
	*badp = true;
	return false;
}

bool
wire_reply_read(const uint8_t *frame, size_t len, struct wire_reply *r)
{
	const uint8_t *p = frame + WIRE_HEADER_LEN;
	const uint8_t *end = frame + len;
	struct pb_field f;
	bool bad = false;

	if (len < WIRE_HEADER_LEN || memcmp(frame, frame_header, WIRE_HEADER_LEN) != 0)
		return false;
	memset(r, 0, sizeof(*r));
	while (next_field(&p, end, &f, &bad)) {
		if (f.number == 1 && f.wire_type == WT_VARINT)
			r->status = (uint32_t)f.varint;
		else if (f.number == 2 && f.wire_type == WT_LEN)
			r->reason = f.data;
		else if (f.number == 3 && f.wire_type == WT_LEN)
			r->message = f.data;
		else if (f.number == 4 && f.wire_type == WT_LEN)
			r->body = f.data;
		else if (f.number == 5 && f.wire_type == WT_VARINT)
			r->request_id = f.varint;
	}
	return !bad;
}

/* Secret{1 name, ..., 6 fields: Field{1 key, 2 value}}: the name and one field's value. */
static bool
secret_read(
    struct wire_bytes secret, const char *key, struct wire_bytes *namep, struct wire_bytes *valuep)
{
	const uint8_t *p = secret.data;
	const uint8_t *end = secret.data + secret.len;
	struct pb_field f;
	bool bad = false;

	while (next_field(&p, end, &f, &bad)) {
		const uint8_t *q;
		struct pb_field g;
		struct wire_bytes k = {NULL, 0};
		struct wire_bytes v = {(const uint8_t *)"", 0};
		bool gbad = false;

		if (f.number == 1 && f.wire_type == WT_LEN) {
			*namep = f.data;
			continue;
		}
		if (f.number != 6 || f.wire_type != WT_LEN)
			continue;
		q = f.data.data;
		while (next_field(&q, f.data.data + f.data.len, &g, &gbad)) {
			if (g.number == 1 && g.wire_type == WT_LEN)
				k = g.data;
			else if (g.number == 2 && g.wire_type == WT_LEN)
				v = g.data;
		}
		if (gbad)
			return false;
		if (k.data != NULL && wire_bytes_eq(k, key))
			*valuep = v;
	}
	return !bad;
}

bool
wire_secret_read(const uint8_t *body, size_t len, bool resolve, const char *key, bool *foundp,
    struct wire_bytes *namep, struct wire_bytes *valuep)
{
	const uint8_t *p = body;
	const uint8_t *end = body + len;
	struct pb_field f;
	bool bad = false;
	/* SecretGetReply{1 secret}; SecretResolveReply{1 found, 2 secret}. */
	uint32_t secret_field = resolve ? 2 : 1;

	*foundp = false;
	namep->data = NULL;
	namep->len = 0;
	valuep->data = NULL;
	valuep->len = 0;
	while (next_field(&p, end, &f, &bad)) {
		if (resolve && f.number == 1 && f.wire_type == WT_VARINT)
			*foundp = f.varint != 0;
		else if (f.number == secret_field && f.wire_type == WT_LEN) {
			if (!resolve)
				*foundp = true;
			if (!secret_read(f.data, key, namep, valuep))
				return false;
		}
	}
	return !bad;
}

bool
wire_list_rows(const uint8_t *body, size_t len, size_t *rowsp)
{
	const uint8_t *p = body;
	const uint8_t *end = body + len;
	struct pb_field f;
	bool bad = false;
	size_t n = 0;

	while (next_field(&p, end, &f, &bad))
		if (f.number == 1 && f.wire_type == WT_LEN)
			n++;
	*rowsp = n;
	return !bad;
}

bool
wire_bytes_eq(struct wire_bytes b, const char *s)
{
	size_t n = strlen(s);

	return b.len == n && (n == 0 || memcmp(b.data, s, n) == 0);
}

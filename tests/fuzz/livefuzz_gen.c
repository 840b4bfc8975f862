/*
 * livefuzz_gen.c: the frames livefuzz sends: valid requests of every method and statement,
 * and from them truncated and wrong headers, unknown versions, garbage bodies behind a
 * valid header, fields of the wrong wire type, huge declared lengths, deeply nested or
 * repeated fields, frames at and over the size limit, invalid UTF-8, statements with
 * random bytes spliced in, byte-level mutations and plain random bytes.
 *
 * Protobuf is written by hand here (tags, varints, lengths) so that any of it can be made
 * wrong on purpose. Names come from a small pool ("fz0", "fz1", ...), so that valid frames
 * meet each other's secrets, and never collide with the secrets livefuzz keeps.
 *
 * What it does not do: no I/O and no checks.
 *
 * Thread safety: pure functions of the rng and buffers passed in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "livefuzz.h"

static const uint8_t frame_header[4] = {0x00, 'S', 'D', 0x01};

static const char *const methods[] = {"Create", "Drop", "List", "Get", "Resolve", "Execute"};

static const char *const kind_names[LF_KIND_COUNT] = {
    [LF_TRUNCATED] = "truncated",
    [LF_BAD_HEADER] = "bad-header",
    [LF_VERSION] = "version",
    [LF_GARBAGE_ENVELOPE] = "garbage-envelope",
    [LF_GARBAGE_BODY] = "garbage-body",
    [LF_WRONG_WIRE_TYPE] = "wrong-wire-type",
    [LF_HUGE_LENGTH] = "huge-length",
    [LF_REPEATED] = "repeated",
    [LF_NESTED] = "nested",
    [LF_SIZE_LIMIT] = "size-limit",
    [LF_INVALID_UTF8] = "invalid-utf8",
    [LF_SPLICE] = "splice",
    [LF_MUTATED] = "mutated",
    [LF_RANDOM] = "random",
    [LF_UNKNOWN_METHOD] = "unknown-method",
    [LF_AUTH_LINE] = "auth-line",
    [LF_VALID] = "valid",
};

/* Statements of SPEC section 3; @ stands for a pool name. */
static const char *const statements[] = {
    "CREATE SECRET @ (TYPE openai, API_KEY 'sk-live-fuzz')",
    "CREATE OR REPLACE SECRET @ (TYPE ollama, api_url 'http://10.1.2.3:11434')",
    "CREATE TEMPORARY SECRET IF NOT EXISTS @ (TYPE azure_llm, api_key 'a', "
    "resource_name 'r', api_version '2024-06-01', SCOPE ('azure_llm://x', ''))",
    "CREATE SECRET @ IN memory (TYPE openai, api_key 'it''s', base_url 'https://h/v1', "
    "PROVIDER config, SCOPE 'openai://fz')",
    "DROP SECRET @",
    "DROP TEMPORARY SECRET IF EXISTS @",
    "DROP SECRET IF EXISTS \"@\" FROM memory;",
    "GET SECRET @",
    "GET SECRET @ FROM memory",
    "FROM duckdb_secrets()",
    "SELECT * FROM duckdb_secrets(redact := false);",
    "FROM duckdb_secrets(redact = true) -- @",
    "FROM which_secret('openai://fz/@', 'openai')",
    "SELECT * FROM which_secret('', 'ollama')",
    "-- comment\n  GET SECRET \"@\"  ;  ",
};

/* Byte sequences that are not UTF-8: stray continuation, overlong, surrogate, too big,
 * truncated, and bytes never used. */
static const char *const bad_utf8[] = {
    "\x80",
    "\xbf",
    "\xc0\xaf",
    "\xc1\x81",
    "\xe0\x80\xaf",
    "\xed\xa0\x80",
    "\xed\xbf\xbf",
    "\xf4\x90\x80\x80",
    "\xf8\x88\x80\x80\x80",
    "\xc3",
    "\xe2\x82",
    "\xfe",
    "\xff",
};

void
lf_rng_seed(struct lf_rng *r, uint64_t seed)
{
	r->s = seed != 0 ? seed : 0x9E3779B97F4A7C15ull;
}

uint64_t
lf_rand(struct lf_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545F4914F6CDD1Dull;
}

size_t
lf_below(struct lf_rng *r, size_t n)
{
	return n == 0 ? 0 : (size_t)(lf_rand(r) % n);
}

bool
lf_chance(struct lf_rng *r, unsigned pct)
{
	return lf_below(r, 100) < pct;
}

const char *
lf_kind_name(enum lf_kind k)
{
	return k < LF_KIND_COUNT ? kind_names[k] : "?";
}

bool
lf_buf_reserve(struct lf_buf *b, size_t cap)
{
	uint8_t *p;
	size_t n = b->cap > 0 ? b->cap : 256;

	if (cap <= b->cap)
		return true;
	while (n < cap)
		n *= 2;
	p = realloc(b->data, n);
	if (p == NULL)
		return false;
	b->data = p;
	b->cap = n;
	return true;
}

bool
lf_buf_put(struct lf_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return true;
	if (b->len + n < b->len || !lf_buf_reserve(b, b->len + n))
		return false;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return true;
}

bool
lf_buf_byte(struct lf_buf *b, uint8_t c)
{
	return lf_buf_put(b, &c, 1);
}

bool
lf_buf_str(struct lf_buf *b, const char *s)
{
	return lf_buf_put(b, s, strlen(s));
}

bool
lf_buf_varint(struct lf_buf *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;

	while (v >= 0x80) {
		tmp[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	tmp[n++] = (uint8_t)v;
	return lf_buf_put(b, tmp, n);
}

bool
lf_buf_tag(struct lf_buf *b, unsigned field, unsigned wire)
{
	return lf_buf_varint(b, (uint64_t)field << 3 | (wire & 7));
}

bool
lf_buf_field(struct lf_buf *b, unsigned field, const void *p, size_t n)
{
	return lf_buf_tag(b, field, 2) && lf_buf_varint(b, n) && lf_buf_put(b, p, n);
}

void
lf_buf_free(struct lf_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

bool
lf_request(struct lf_buf *f, const char *method, const uint8_t *body, size_t len, const char *token,
    uint64_t id)
{
	f->len = 0;
	return lf_buf_put(f, frame_header, sizeof(frame_header)) &&
	       lf_buf_field(f, 1, method, strlen(method)) && lf_buf_field(f, 2, body, len) &&
	       (token == NULL || token[0] == '\0' || lf_buf_field(f, 3, token, strlen(token))) &&
	       (id == 0 || (lf_buf_tag(f, 5, 0) && lf_buf_varint(f, id)));
}

static bool
put_random(struct lf_rng *r, struct lf_buf *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!lf_buf_byte(b, (uint8_t)lf_rand(r)))
			return false;
	return true;
}

/* A pool name, sometimes in another case or quoted-worthy. */
static void
pool_name(struct lf_rng *r, const struct lf_gen_config *cfg, char *buf, size_t size)
{
	size_t k = lf_below(r, cfg->pool > 0 ? cfg->pool : 1);

	if (lf_chance(r, 20))
		(void)snprintf(buf, size, "FZ%zu", k);
	else
		(void)snprintf(buf, size, "fz%zu", k);
}

/* A statement of the dialect into b (appended). */
static bool
gen_statement(struct lf_rng *r, const struct lf_gen_config *cfg, struct lf_buf *b)
{
	const char *t = statements[lf_below(r, sizeof(statements) / sizeof(statements[0]))];
	char name[32];
	bool ok = true;

	pool_name(r, cfg, name, sizeof(name));
	for (; ok && *t != '\0'; t++)
		ok = *t == '@' ? lf_buf_str(b, name) : lf_buf_byte(b, (uint8_t)*t);
	return ok;
}

/* A secretd.v1.Field. */
static bool
gen_field(struct lf_buf *b, const char *key, const char *value)
{
	struct lf_buf f = {0};
	bool ok = lf_buf_field(&f, 1, key, strlen(key)) &&
	          lf_buf_field(&f, 2, value, strlen(value)) && lf_buf_field(b, 3, f.data, f.len);

	lf_buf_free(&f);
	return ok;
}

/* A plausible input message of method m (index into methods[]) into b. */
static bool
gen_body(struct lf_rng *r, const struct lf_gen_config *cfg, size_t m, struct lf_buf *b)
{
	static const char *const types[] = {"openai", "ollama", "azure_llm", "OpenAI", "bedrock"};
	char name[32];
	const char *type;
	bool ok = true;

	pool_name(r, cfg, name, sizeof(name));
	switch (m) {
	case 0: /* Create */
		type = types[lf_below(r, 5)];
		if (!lf_chance(r, 10))
			ok = ok && lf_buf_field(b, 1, name, strlen(name));
		ok = ok && lf_buf_field(b, 2, type, strlen(type));
		if (type[0] == 'o' && type[1] == 'l')
			ok = ok && gen_field(b, "api_url", "http://fz:11434");
		else
			ok = ok && gen_field(b, "api_key", "sk-fz");
		if (strcmp(type, "azure_llm") == 0)
			ok = ok && gen_field(b, "resource_name", "r") &&
			     gen_field(b, "api_version", "v1");
		if (lf_chance(r, 30))
			ok = ok && lf_buf_field(b, 4, "openai://fz", 11);
		if (lf_chance(r, 2)) /* persistent: each is an fsync, keep them rare */
			ok = ok && lf_buf_tag(b, 5, 0) && lf_buf_varint(b, 1);
		if (lf_chance(r, 50))
			ok = ok && lf_buf_tag(b, 6, 0) && lf_buf_varint(b, lf_below(r, 3));
		break;
	case 1: /* Drop */
		ok = lf_buf_field(b, 1, name, strlen(name)) &&
		     (lf_chance(r, 50) ||
		         (lf_buf_tag(b, 2, 0) && lf_buf_varint(b, lf_below(r, 3)))) &&
		     (lf_chance(r, 50) || (lf_buf_tag(b, 3, 0) && lf_buf_varint(b, 1)));
		break;
	case 2: /* List */
		ok = (lf_chance(r, 50) || (lf_buf_tag(b, 1, 0) && lf_buf_varint(b, 1))) &&
		     (lf_chance(r, 70) || lf_buf_field(b, 2, "openai", 6));
		break;
	case 3: /* Get */
		ok = lf_buf_field(b, 1, name, strlen(name)) &&
		     (lf_chance(r, 70) || (lf_buf_tag(b, 2, 0) && lf_buf_varint(b, 1)));
		break;
	case 4: /* Resolve */
		ok = lf_buf_field(b, 1, "openai://fz/x", 13) && lf_buf_field(b, 2, "openai", 6);
		break;
	default: { /* Execute */
		struct lf_buf s = {0};

		ok = gen_statement(r, cfg, &s) && lf_buf_field(b, 1, s.data, s.len);
		lf_buf_free(&s);
		break;
	}
	}
	return ok;
}

/* A token: the valid one mostly, sometimes none or a wrong one. */
static const char *
gen_token(struct lf_rng *r, const struct lf_gen_config *cfg)
{
	size_t k = lf_below(r, 10);

	if (k < 8)
		return cfg->token;
	return k == 8 ? "" : "wrong-token";
}

/* A valid binary request of a random method into f. */
static bool
gen_valid_binary(struct lf_rng *r, const struct lf_gen_config *cfg, struct lf_buf *f)
{
	struct lf_buf body = {0};
	size_t m = lf_below(r, 6);
	bool ok = gen_body(r, cfg, m, &body) &&
	          lf_request(f, methods[m], body.data, body.len, gen_token(r, cfg), lf_rand(r) | 1);

	lf_buf_free(&body);
	return ok;
}

/* A valid text frame, with an AUTH line when a token is needed. */
static bool
gen_valid_text(struct lf_rng *r, const struct lf_gen_config *cfg, struct lf_buf *f)
{
	f->len = 0;
	if (cfg->token[0] != '\0' && lf_chance(r, 80) &&
	    !(lf_buf_str(f, "AUTH ") && lf_buf_str(f, cfg->token) && lf_buf_str(f, "\n")))
		return false;
	return gen_statement(r, cfg, f);
}

static bool
gen_valid(struct lf_rng *r, const struct lf_gen_config *cfg, struct lf_buf *f)
{
	return lf_chance(r, 60) ? gen_valid_binary(r, cfg, f) : gen_valid_text(r, cfg, f);
}

/* Apply one byte-level mutation to f (keeps it at least 1 byte long when it was). */
static bool
mutate_once(struct lf_rng *r, struct lf_buf *f)
{
	static const uint8_t interesting[] = {0x00, 0x01, 0x7F, 0x80, 0xFF, 0x0A, 0x27, 0x22};
	size_t pos = lf_below(r, f->len + 1);
	size_t n;

	switch (lf_below(r, 7)) {
	case 0: /* flip a bit */
		if (f->len > 0)
			f->data[lf_below(r, f->len)] ^= (uint8_t)(1u << lf_below(r, 8));
		return true;
	case 1: /* set an interesting byte */
		if (f->len > 0)
			f->data[lf_below(r, f->len)] =
			    interesting[lf_below(r, sizeof(interesting))];
		return true;
	case 2: /* delete a range */
		n = lf_below(r, 16) + 1;
		if (pos >= f->len)
			return true;
		if (n > f->len - pos)
			n = f->len - pos;
		memmove(f->data + pos, f->data + pos + n, f->len - pos - n);
		f->len -= n;
		return true;
	case 3: { /* insert random bytes */
		uint8_t tmp[16];

		n = lf_below(r, sizeof(tmp)) + 1;
		for (size_t i = 0; i < n; i++)
			tmp[i] = (uint8_t)lf_rand(r);
		if (!lf_buf_reserve(f, f->len + n))
			return false;
		memmove(f->data + pos + n, f->data + pos, f->len - pos);
		memcpy(f->data + pos, tmp, n);
		f->len += n;
		return true;
	}
	case 4: { /* duplicate a range */
		size_t start;

		if (f->len == 0)
			return true;
		start = lf_below(r, f->len);
		n = lf_below(r, f->len - start) + 1;
		if (n > 256)
			n = 256;
		if (!lf_buf_reserve(f, f->len + n))
			return false;
		memmove(f->data + start + 2 * n, f->data + start + n, f->len - start - n);
		memcpy(f->data + start + n, f->data + start, n);
		f->len += n;
		return true;
	}
	case 5: /* truncate */
		if (f->len > 1)
			f->len = lf_below(r, f->len - 1) + 1;
		return true;
	default: /* add to a byte (a varint or a length, often) */
		if (f->len > 0)
			f->data[lf_below(r, f->len)] += (uint8_t)(lf_below(r, 9) - 4);
		return true;
	}
}

/* Insert s (n bytes) at a random position of f, never before byte skip. */
static bool
splice_in(struct lf_rng *r, struct lf_buf *f, size_t skip, const void *s, size_t n)
{
	size_t pos = skip >= f->len ? f->len : skip + lf_below(r, f->len - skip + 1);

	if (!lf_buf_reserve(f, f->len + n))
		return false;
	memmove(f->data + pos + n, f->data + pos, f->len - pos);
	memcpy(f->data + pos, s, n);
	f->len += n;
	return true;
}

/* A field of a wrong wire type with some payload, appended to b. */
static bool
put_wrong_wire(struct lf_rng *r, struct lf_buf *b)
{
	unsigned field = (unsigned)lf_below(r, 8) + 1;
	unsigned wire = (unsigned)lf_below(r, 8);

	if (!lf_buf_tag(b, field, wire))
		return false;
	switch (wire) {
	case 0:
		return lf_buf_varint(b, lf_rand(r));
	case 1:
		return put_random(r, b, 8);
	case 2:
		return lf_buf_varint(b, 3) && put_random(r, b, 3);
	case 5:
		return put_random(r, b, 4);
	default: /* groups (3, 4) and the unused types 6, 7 */
		return put_random(r, b, lf_below(r, 4));
	}
}

/* A frame with a field of a wrong wire type in the envelope or in the body. */
static bool
gen_wrong_wire(struct lf_rng *r, const struct lf_gen_config *cfg, struct lf_buf *f)
{
	struct lf_buf body = {0};
	size_t m = lf_below(r, 6);
	bool in_body = lf_chance(r, 50);
	bool ok = gen_body(r, cfg, m, &body) && (!in_body || put_wrong_wire(r, &body)) &&
	          lf_request(f, methods[m], body.data, body.len, cfg->token, 0) &&
	          (in_body || put_wrong_wire(r, f));

	lf_buf_free(&body);
	return ok;
}

/* A length-delimited field that declares far more bytes than follow. */
static bool
gen_huge_length(struct lf_rng *r, const struct lf_gen_config *cfg, struct lf_buf *f)
{
	static const uint64_t lens[] = {0x7FFFFFFFull, 0xFFFFFFFFull, 0x100000000ull,
	    0x7FFFFFFFFFFFFFFFull, 0xFFFFFFFFFFFFFFFFull, 1u << 20, 65536};
	uint64_t len = lens[lf_below(r, sizeof(lens) / sizeof(lens[0]))];
	struct lf_buf body = {0};
	bool ok;

	if (lf_chance(r, 50)) { /* in the envelope */
		f->len = 0;
		ok = lf_buf_put(f, frame_header, 4) && lf_buf_field(f, 1, "Get", 3) &&
		     lf_buf_tag(f, (unsigned)lf_below(r, 5) + 1, 2) && lf_buf_varint(f, len) &&
		     put_random(r, f, lf_below(r, 32));
		return ok;
	}
	/* in the body, which the envelope frames correctly */
	ok = lf_buf_tag(&body, (unsigned)lf_below(r, 7) + 1, 2) && lf_buf_varint(&body, len) &&
	     put_random(r, &body, lf_below(r, 32)) &&
	     lf_request(f, methods[lf_below(r, 6)], body.data, body.len, cfg->token, 0);
	lf_buf_free(&body);
	return ok;
}

/* Many repeated fields: scope entries, fields, or repeated envelope fields. */
static bool
gen_repeated(struct lf_rng *r, const struct lf_gen_config *cfg, struct lf_buf *f)
{
	struct lf_buf body = {0};
	size_t n = lf_below(r, 4000) + 17;
	size_t budget = cfg->max_frame > 64 ? cfg->max_frame - 64 : 64;
	bool ok = lf_buf_field(&body, 2, "openai", 6);

	for (size_t i = 0; ok && i < n && body.len < budget; i++) {
		switch (lf_below(r, 3)) {
		case 0:
			ok = lf_buf_field(&body, 4, "openai://r", 10);
			break;
		case 1:
			ok = gen_field(&body, "api_key", "v");
			break;
		default:
			ok = lf_buf_field(&body, 1, "fz0", 3);
			break;
		}
	}
	ok = ok &&
	     lf_request(f, lf_chance(r, 80) ? "Create" : "Get", body.data, body.len, cfg->token, 0);
	/* The envelope's own fields repeated too: the last one wins. */
	for (size_t i = 0; ok && lf_chance(r, 30) && i < 1000; i++)
		ok = lf_buf_field(f, 1, "List", 4);
	lf_buf_free(&body);
	return ok;
}

/* Deep nesting: length-delimited fields inside each other, or parentheses in a statement. */
static bool
gen_nested(struct lf_rng *r, const struct lf_gen_config *cfg, struct lf_buf *f)
{
	size_t depth = lf_below(r, 3000) + 10;
	struct lf_buf in = {0};
	struct lf_buf out = {0};
	bool ok = true;

	if (lf_chance(r, 40)) { /* text: "CREATE SECRET s (((((..." */
		f->len = 0;
		ok = lf_buf_str(f, "CREATE SECRET fz1 ");
		for (size_t i = 0; ok && i < depth; i++)
			ok = lf_buf_byte(f, '(');
		return ok && lf_buf_str(f, "TYPE openai)");
	}
	/* binary: field 3 (Field) or an unknown field 15 holding itself, depth times */
	ok = lf_buf_field(&in, 1, "k", 1);
	for (size_t i = 0; ok && i < depth && in.len < cfg->max_frame / 2; i++) {
		out.len = 0;
		ok = lf_buf_field(&out, lf_chance(r, 50) ? 3 : 15, in.data, in.len);
		if (ok) {
			struct lf_buf t = in;

			in = out;
			out = t;
		}
	}
	ok = ok && lf_request(f, "Create", in.data, in.len, cfg->token, 0);
	lf_buf_free(&in);
	lf_buf_free(&out);
	return ok;
}

/* A frame of exactly a size at or around the limit, binary or text. */
static bool
gen_size_limit(struct lf_rng *r, const struct lf_gen_config *cfg, struct lf_buf *f)
{
	size_t sizes[] = {cfg->max_frame - 1, cfg->max_frame, cfg->max_frame + 1,
	    cfg->max_frame + 1 + lf_below(r, cfg->max_frame), cfg->max_frame * 2, cfg->hard_max - 4,
	    cfg->hard_max - 3};
	/* Over the transport cap the server drops the connection and nng's REQ resends:
	 * slow, so rare. */
	size_t k = lf_below(r, 200) == 0 ? 6 : lf_below(r, 6);
	size_t want = sizes[k];
	bool ok;

	f->len = 0;
	if (lf_chance(r, 50)) {
		/* Execute with a statement padded by a comment, packed to exactly want bytes
		 * (or the nearest size that fits: the lengths' varints grow with them). */
		struct lf_buf body = {0};
		size_t pad = want > 64 ? want - 64 : 0;

		ok = lf_buf_reserve(&body, pad + 32);
		ok = ok && lf_buf_tag(&body, 1, 2) && lf_buf_varint(&body, pad + 23) &&
		     lf_buf_str(&body, "FROM duckdb_secrets() -");
		for (size_t i = 0; ok && i < pad; i++)
			ok = lf_buf_byte(&body, '-');
		ok = ok && lf_request(f, "Execute", body.data, body.len, cfg->token, 0);
		lf_buf_free(&body);
		/* Top up to want with unknown varint fields (15 = 0): 0x78 0x00, or
		 * 0x78 0x80 0x00 once when an odd number of bytes is missing. */
		if (ok && f->len < want && (want - f->len) % 2 == 1 && want - f->len >= 3)
			ok = lf_buf_put(f, "\x78\x80\x00", 3);
		while (ok && f->len + 2 <= want)
			ok = lf_buf_put(f, "\x78\x00", 2);
		return ok;
	}
	ok = lf_buf_reserve(f, want) && lf_buf_str(f, "FROM duckdb_secrets() --");
	while (ok && f->len < want)
		ok = lf_buf_byte(f, 'x');
	return ok;
}

/* A statement (text frame or Execute body) with invalid UTF-8 in it. */
static bool
gen_invalid_utf8(struct lf_rng *r, const struct lf_gen_config *cfg, struct lf_buf *f)
{
	struct lf_buf s = {0};
	const char *bad = bad_utf8[lf_below(r, sizeof(bad_utf8) / sizeof(bad_utf8[0]))];
	bool ok = gen_statement(r, cfg, &s) && splice_in(r, &s, 0, bad, strlen(bad));

	if (ok && s.data[0] == 0)
		s.data[0] = 'X';
	if (ok && lf_chance(r, 50)) {
		struct lf_buf body = {0};

		ok = lf_buf_field(&body, 1, s.data, s.len) &&
		     lf_request(f, "Execute", body.data, body.len, cfg->token, 0);
		lf_buf_free(&body);
	} else if (ok) {
		f->len = 0;
		ok = lf_buf_put(f, s.data, s.len);
	}
	lf_buf_free(&s);
	return ok;
}

/* A statement with random bytes spliced in (text frame or Execute body). */
static bool
gen_splice(struct lf_rng *r, const struct lf_gen_config *cfg, struct lf_buf *f)
{
	struct lf_buf s = {0};
	uint8_t junk[24];
	size_t n = lf_below(r, sizeof(junk)) + 1;
	bool ok;

	for (size_t i = 0; i < n; i++)
		junk[i] = (uint8_t)lf_rand(r);
	ok = gen_statement(r, cfg, &s) && splice_in(r, &s, 1, junk, n);
	if (ok && lf_chance(r, 40)) {
		struct lf_buf body = {0};

		ok = lf_buf_field(&body, 1, s.data, s.len) &&
		     lf_request(f, "Execute", body.data, body.len, cfg->token, 0);
		lf_buf_free(&body);
	} else if (ok) {
		f->len = 0;
		ok = lf_buf_put(f, s.data, s.len);
	}
	lf_buf_free(&s);
	return ok;
}

/* An unknown or malformed method name. */
static bool
gen_unknown_method(struct lf_rng *r, const struct lf_gen_config *cfg, struct lf_buf *f)
{
	static const char *const names[] = {"", "create", "CREATE", "Create ", "Frobnicate",
	    "Execute\x01", "secretd.v1.Secrets/Create", "Lis", "ListX"};
	char name[64];
	size_t k = lf_below(r, sizeof(names) / sizeof(names[0]) + 2);
	struct lf_buf body = {0};
	bool ok;

	if (k < sizeof(names) / sizeof(names[0])) {
		(void)snprintf(name, sizeof(name), "%s", names[k]);
	} else if (k == sizeof(names) / sizeof(names[0])) {
		/* a method name with a NUL inside: "Get\0junk" */
		ok = gen_body(r, cfg, 3, &body);
		f->len = 0;
		ok = ok && lf_buf_put(f, frame_header, 4) && lf_buf_field(f, 1, "Get\0junk", 8) &&
		     lf_buf_field(f, 2, body.data, body.len) &&
		     lf_buf_field(f, 3, cfg->token, strlen(cfg->token));
		lf_buf_free(&body);
		return ok;
	} else {
		size_t n = lf_below(r, 40) + 1;

		for (size_t i = 0; i < n; i++)
			name[i] = (char)(lf_below(r, 94) + 33);
		name[n] = '\0';
	}
	ok = gen_body(r, cfg, lf_below(r, 6), &body) &&
	     lf_request(f, name, body.data, body.len, cfg->token, 0);
	lf_buf_free(&body);
	return ok;
}

/* Text frames with odd AUTH lines. */
static bool
gen_auth_line(struct lf_rng *r, const struct lf_gen_config *cfg, struct lf_buf *f)
{
	bool ok;

	f->len = 0;
	switch (lf_below(r, 6)) {
	case 0:
		ok = lf_buf_str(f, "AUTH wrong-token\nFROM duckdb_secrets()");
		break;
	case 1:
		ok = lf_buf_str(f, "AUTH ") && lf_buf_str(f, cfg->token); /* no newline */
		break;
	case 2:
		ok = lf_buf_str(f, "auth ") && lf_buf_str(f, cfg->token) &&
		     lf_buf_str(f, "\r\nGET SECRET fz1");
		break;
	case 3:
		ok = lf_buf_str(f, "AUTH \n\nFROM duckdb_secrets()");
		break;
	case 4:
		ok = lf_buf_str(f, "AUTH ");
		for (size_t i = 0; ok && i < 4000; i++)
			ok = lf_buf_byte(f, 'A');
		ok = ok && lf_buf_str(f, "\nFROM duckdb_secrets()");
		break;
	default:
		ok = lf_buf_str(f, "AUTH ") && lf_buf_str(f, cfg->token) &&
		     lf_buf_str(f, "\nAUTH ") && lf_buf_str(f, cfg->token) &&
		     lf_buf_str(f, "\nFROM duckdb_secrets()");
		break;
	}
	return ok;
}

enum lf_kind
lf_generate(struct lf_rng *r, const struct lf_gen_config *cfg, struct lf_buf *f)
{
	/* Weights per kind, out of their sum: mutations of valid frames dominate. */
	static const unsigned weights[LF_KIND_COUNT] = {
	    [LF_TRUNCATED] = 8,
	    [LF_BAD_HEADER] = 5,
	    [LF_VERSION] = 4,
	    [LF_GARBAGE_ENVELOPE] = 6,
	    [LF_GARBAGE_BODY] = 8,
	    [LF_WRONG_WIRE_TYPE] = 8,
	    [LF_HUGE_LENGTH] = 6,
	    [LF_REPEATED] = 2,
	    [LF_NESTED] = 2,
	    [LF_SIZE_LIMIT] = 1,
	    [LF_INVALID_UTF8] = 6,
	    [LF_SPLICE] = 8,
	    [LF_MUTATED] = 16,
	    [LF_RANDOM] = 6,
	    [LF_UNKNOWN_METHOD] = 4,
	    [LF_AUTH_LINE] = 3,
	    [LF_VALID] = 7,
	};
	unsigned total = 0;
	unsigned pick;
	enum lf_kind k = 0;
	bool ok = true;

	for (int i = 0; i < LF_KIND_COUNT; i++)
		total += weights[i];
	pick = (unsigned)lf_below(r, total);
	while (pick >= weights[k]) {
		pick -= weights[k];
		k++;
	}
	f->len = 0;
	switch (k) {
	case LF_TRUNCATED:
		ok = gen_valid_binary(r, cfg, f);
		if (ok && f->len > 0)
			f->len = lf_below(r, f->len);
		break;
	case LF_BAD_HEADER:
		ok = gen_valid_binary(r, cfg, f);
		if (ok)
			f->data[1 + lf_below(r, 2)] ^= (uint8_t)(lf_below(r, 255) + 1);
		break;
	case LF_VERSION:
		ok = gen_valid_binary(r, cfg, f);
		if (ok)
			f->data[3] = (uint8_t)(lf_chance(r, 50) ? lf_below(r, 255) + 2 : 0);
		break;
	case LF_GARBAGE_ENVELOPE:
		ok = lf_buf_put(f, frame_header, 4) && put_random(r, f, lf_below(r, 600));
		break;
	case LF_GARBAGE_BODY: {
		struct lf_buf body = {0};

		ok = put_random(r, &body, lf_below(r, 300)) &&
		     lf_request(f, methods[lf_below(r, 6)], body.data, body.len, cfg->token, 0);
		lf_buf_free(&body);
		break;
	}
	case LF_WRONG_WIRE_TYPE:
		ok = gen_wrong_wire(r, cfg, f);
		break;
	case LF_HUGE_LENGTH:
		ok = gen_huge_length(r, cfg, f);
		break;
	case LF_REPEATED:
		ok = gen_repeated(r, cfg, f);
		break;
	case LF_NESTED:
		ok = gen_nested(r, cfg, f);
		break;
	case LF_SIZE_LIMIT:
		ok = gen_size_limit(r, cfg, f);
		break;
	case LF_INVALID_UTF8:
		ok = gen_invalid_utf8(r, cfg, f);
		break;
	case LF_SPLICE:
		ok = gen_splice(r, cfg, f);
		break;
	case LF_MUTATED: {
		size_t n = lf_below(r, 8) + 1;

		ok = gen_valid(r, cfg, f);
		for (size_t i = 0; ok && i < n; i++)
			ok = mutate_once(r, f);
		break;
	}
	case LF_RANDOM:
		ok = put_random(r, f, lf_below(r, 1024));
		break;
	case LF_UNKNOWN_METHOD:
		ok = gen_unknown_method(r, cfg, f);
		break;
	case LF_AUTH_LINE:
		ok = gen_auth_line(r, cfg, f);
		break;
	case LF_VALID:
	case LF_KIND_COUNT:
		k = LF_VALID;
		ok = gen_valid(r, cfg, f);
		break;
	}
	return ok ? k : LF_KIND_COUNT;
}

enum lf_expect
lf_expect_of(const uint8_t *frame, size_t len, const struct lf_gen_config *cfg)
{
	/* nng's cap counts the REQ header (a 4-byte request id) with the body. */
	if (len + 4 > cfg->hard_max)
		return EXPECT_NOTHING;
	/* The server checks the frame limit first, then the header (service.c). */
	if (len > 0 && frame[0] != 0)
		return len > cfg->max_frame ? EXPECT_TEXT_TOO_LARGE : EXPECT_TEXT;
	if (len > cfg->max_frame)
		return EXPECT_TOO_LARGE;
	if (len < 4 || memcmp(frame, frame_header, 3) != 0)
		return EXPECT_BAD_HEADER;
	if (frame[3] != frame_header[3])
		return EXPECT_VERSION;
	return EXPECT_BINARY;
}

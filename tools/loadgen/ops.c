/*
 * ops.c: the operations secretd-bench measures, and the store contents they run against.
 *
 * Every secretd reply is checked: the status must be OK, a Get must return bench_get with its
 * exact 1 KiB value, a List exactly the rows that exist, a Resolve the secret its path
 * selects. Requester threads check with the in-place reader of wire.c; bench_op_verify checks
 * one exchange of each op with protobuf-c's generated unpackers as well, so both readers agree
 * on real replies. An echo reply is checked as an OK reply frame.
 *
 * The store: bench_get (temporary, a 1 KiB api_key) plus temporary fillers fill_000000 ...,
 * each scoped `openai://fill/<index>/` so that a Resolve path selects exactly one of them.
 *
 * Thread safety: build and check functions only read the op and use the requester's own
 * buffer; the value tables are filled once, before any thread starts (bench_op_init).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bench.h"
#include "wire.h"

#define GET_NAME "bench_get"
#define GET_VALUE_LEN 1024
#define VALUE32_LEN 32
#define FILL_BATCH_CONC 64

enum { ST_OK = 0 };

/* The 1 KiB value of bench_get: printable, so that it also reads back unchanged in JSON. */
static char get_value[GET_VALUE_LEN + 1];

static const struct {
	const char *name;
	const char *label;
	unsigned steps;
	size_t population;
} op_table[] = {
    [OP_GET] = {"get", "Get 1 KiB", 1, 100},
    [OP_GET_TEXT] = {"get-text", "Get 1 KiB, text frame", 1, 100},
    [OP_LIST] = {"list", "List 100 (redacted)", 1, 100},
    [OP_CREATE_TEMP] = {"create-temp", "Create+Drop temporary", 2, 100},
    [OP_CREATE_PERSIST] = {"create-persistent", "Create+Drop persistent", 2, 100},
    [OP_RESOLVE] = {"resolve", "Resolve among 1,000", 1, 1000},
    [OP_FILL] = {"fill", "fill", 1, 0},
    [OP_UNFILL] = {"unfill", "unfill", 1, 0},
    [OP_PCREATE] = {"pcreate", "persistent create", 1, 0},
    [OP_MCREATE] = {"mcreate", "temporary create", 1, 0},
    [OP_PGET] = {"pget", "persistent get", 1, 0},
};

const char *
bench_op_name(enum bench_op_kind k)
{
	return op_table[k].name;
}

const char *
bench_op_label(enum bench_op_kind k)
{
	return op_table[k].label;
}

size_t
bench_op_population(enum bench_op_kind k)
{
	return op_table[k].population;
}

unsigned long
bench_resolve_target(size_t population)
{
	/* fill_ indexes run 0 .. population - 2 (bench_get is the other one). */
	return population >= 2 ? (unsigned long)(population - 1) / 2 : 0;
}

int
bench_op_parse(const char *name, enum bench_op_kind *kp)
{
	for (int k = 0; k < N_TABLE_OPS; k++) {
		if (strcmp(op_table[k].name, name) == 0) {
			*kp = (enum bench_op_kind)k;
			return 0;
		}
	}
	return -1;
}

static void
value_fill(char *buf, size_t len)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

	for (size_t i = 0; i < len; i++)
		buf[i] = alphabet[(i * 7 + i / 62) % (sizeof(alphabet) - 1)];
	buf[len] = '\0';
}

/* A create request: name, an openai api_key, optional scope. */
static int
build_create(struct load_worker *w, const struct bench_op *op, const char *name, const char *value,
    const char *scope, bool persistent, uint64_t request_id, nng_msg **msgp)
{
	Secretd__V1__SecretCreate c = SECRETD__V1__SECRET_CREATE__INIT;
	Secretd__V1__Field f = SECRETD__V1__FIELD__INIT;
	Secretd__V1__Field *fields[1] = {&f};
	char *scopes[1] = {(char *)scope};

	c.name = (char *)name;
	c.type = (char *)"openai";
	f.key = (char *)"api_key";
	f.value.data = (uint8_t *)(void *)(char *)value;
	f.value.len = strlen(value);
	c.fields = fields;
	c.n_fields = 1;
	if (scope != NULL) {
		c.scope = scopes;
		c.n_scope = 1;
	}
	c.persistent = persistent;
	return wire_request("Create", &c.base, op->token, 0, request_id, &w->scratch, msgp);
}

static int
build_drop(struct load_worker *w, const struct bench_op *op, const char *name, bool persistent,
    uint64_t request_id, nng_msg **msgp)
{
	Secretd__V1__SecretDrop d = SECRETD__V1__SECRET_DROP__INIT;

	d.name = (char *)name;
	d.storage = persistent ? SECRETD__V1__STORAGE__STORAGE_SQLCIPHER
	                       : SECRETD__V1__STORAGE__STORAGE_MEMORY;
	return wire_request("Drop", &d.base, op->token, 0, request_id, &w->scratch, msgp);
}

static int
build_get(struct load_worker *w, const struct bench_op *op, const char *name, nng_msg **msgp)
{
	Secretd__V1__SecretGet g = SECRETD__V1__SECRET_GET__INIT;

	g.name = (char *)name;
	return wire_request("Get", &g.base, op->token, 0, 0, &w->scratch, msgp);
}

static int
op_build(
    const struct load_op *base, struct load_worker *w, uint64_t k, unsigned step, nng_msg **msgp)
{
	const struct bench_op *op = (const struct bench_op *)(const void *)base;
	unsigned long i = op->base_k + (unsigned long)k;
	uint64_t request_id = load_request_id(w, k, step);
	char name[64];
	char value[VALUE32_LEN + 1];
	char scope[64];
	char path[80];

	switch (op->kind) {
	case OP_GET:
		return build_get(w, op, GET_NAME, msgp);
	case OP_GET_TEXT:
		return wire_text(op->token, "GET SECRET " GET_NAME, msgp);
	case OP_LIST: {
		Secretd__V1__SecretList l = SECRETD__V1__SECRET_LIST__INIT;

		return wire_request("List", &l.base, op->token, 0, 0, &w->scratch, msgp);
	}
	case OP_RESOLVE: {
		Secretd__V1__SecretResolve r = SECRETD__V1__SECRET_RESOLVE__INIT;

		(void)snprintf(
		    path, sizeof(path), "openai://fill/%06lu/gpt-4o", op->resolve_target);
		r.path = path;
		r.type = (char *)"openai";
		return wire_request("Resolve", &r.base, op->token, 0, 0, &w->scratch, msgp);
	}
	case OP_CREATE_TEMP:
	case OP_CREATE_PERSIST: {
		bool persistent = op->kind == OP_CREATE_PERSIST;

		(void)snprintf(name, sizeof(name), "cd_%llx", (unsigned long long)k);
		if (step == 1)
			return build_drop(w, op, name, persistent, request_id, msgp);
		(void)snprintf(value, sizeof(value), "sk-cd-%026llu", (unsigned long long)k);
		return build_create(w, op, name, value, NULL, persistent, request_id, msgp);
	}
	case OP_FILL:
		(void)snprintf(name, sizeof(name), "fill_%06lu", i);
		(void)snprintf(scope, sizeof(scope), "openai://fill/%06lu/", i);
		(void)snprintf(value, sizeof(value), "sk-fill-%024lu", i);
		return build_create(w, op, name, value, scope, false, request_id, msgp);
	case OP_UNFILL:
		(void)snprintf(name, sizeof(name), "fill_%06lu", i);
		return build_drop(w, op, name, false, request_id, msgp);
	case OP_PCREATE:
	case OP_MCREATE:
		(void)snprintf(
		    name, sizeof(name), "%c%07lu", op->kind == OP_PCREATE ? 'p' : 'm', i);
		(void)snprintf(value, sizeof(value), "sk-scale-%023lu", i);
		return build_create(
		    w, op, name, value, NULL, op->kind == OP_PCREATE, request_id, msgp);
	case OP_PGET:
		(void)snprintf(name, sizeof(name), "p%07lu", i);
		return build_get(w, op, name, msgp);
	default:
		return NNG_EINVAL;
	}
}

static bool
fail_msg(char *err, size_t errlen, const char *what)
{
	(void)snprintf(err, errlen, "%s", what);
	return false;
}

/* Whether needle occurs in hay (memmem is a GNU extension). */
static bool
contains(const uint8_t *hay, size_t len, const char *needle, size_t n)
{
	for (size_t i = 0; n <= len && i <= len - n; i++) {
		const uint8_t *p = memchr(hay + i, needle[0], len - n - i + 1);

		if (p == NULL)
			return false;
		i = (size_t)(p - hay);
		if (memcmp(p, needle, n) == 0)
			return true;
	}
	return false;
}

static bool
check_text(const uint8_t *frame, size_t len, char *err, size_t errlen)
{
	static const char ok[] = "{\"status\":\"OK\"";

	if (len < sizeof(ok) - 1 || memcmp(frame, ok, sizeof(ok) - 1) != 0) {
		(void)snprintf(err, errlen, "text reply is not OK: %.200s", (const char *)frame);
		return false;
	}
	if (!contains(frame, len, get_value, GET_VALUE_LEN))
		return fail_msg(err, errlen, "text reply does not hold bench_get's value");
	return true;
}

static bool
op_check(const struct load_op *base, struct load_worker *w, uint64_t k, unsigned step,
    const uint8_t *frame, size_t len, char *err, size_t errlen)
{
	const struct bench_op *op = (const struct bench_op *)(const void *)base;
	struct wire_reply r;
	struct wire_bytes name;
	struct wire_bytes value;
	char want[64];
	bool found = false;
	size_t rows = 0;

	(void)w;
	(void)k;
	(void)step;
	if (op->kind == OP_GET_TEXT && !op->echo)
		return check_text(frame, len, err, errlen);
	if (!wire_reply_read(frame, len, &r))
		return fail_msg(err, errlen, "malformed reply frame");
	if (r.status != ST_OK) {
		(void)snprintf(err, errlen, "status %u (%.*s): %.*s", r.status, (int)r.reason.len,
		    (const char *)r.reason.data, (int)r.message.len, (const char *)r.message.data);
		return false;
	}
	if (op->echo)
		return true;
	switch (op->kind) {
	case OP_GET:
	case OP_PGET:
		if (!wire_secret_read(
		        r.body.data, r.body.len, false, "api_key", &found, &name, &value) ||
		    !found)
			return fail_msg(err, errlen, "Get reply holds no secret");
		if (op->kind == OP_PGET)
			return true;
		if (!wire_bytes_eq(name, GET_NAME) || value.len != GET_VALUE_LEN ||
		    memcmp(value.data, get_value, GET_VALUE_LEN) != 0)
			return fail_msg(err, errlen, "Get returned the wrong secret or value");
		return true;
	case OP_LIST:
		if (!wire_list_rows(r.body.data, r.body.len, &rows))
			return fail_msg(err, errlen, "malformed List reply");
		if (rows != op->population) {
			(void)snprintf(
			    err, errlen, "List returned %zu rows, want %zu", rows, op->population);
			return false;
		}
		return true;
	case OP_RESOLVE:
		if (!wire_secret_read(
		        r.body.data, r.body.len, true, "api_key", &found, &name, &value))
			return fail_msg(err, errlen, "malformed Resolve reply");
		(void)snprintf(want, sizeof(want), "fill_%06lu", op->resolve_target);
		if (!found || !wire_bytes_eq(name, want)) {
			(void)snprintf(err, errlen, "Resolve chose %.*s, want %s",
			    found ? (int)name.len : 4, found ? (const char *)name.data : "none",
			    want);
			return false;
		}
		return true;
	default:
		return true; /* Create and Drop: OK is all they say */
	}
}

void
bench_op_init(struct bench_op *op, enum bench_op_kind kind, bool echo, const char *token)
{
	if (get_value[0] == '\0')
		value_fill(get_value, GET_VALUE_LEN);
	memset(op, 0, sizeof(*op));
	op->base.steps = op_table[kind].steps;
	op->base.build = op_build;
	op->base.check = op_check;
	op->kind = kind;
	op->echo = echo;
	op->token = token;
	op->population = op_table[kind].population;
	op->resolve_target = bench_resolve_target(op->population);
}

/* protobuf-c's view of one reply: the checks of op_check, made with the generated code. */
static bool
verify_unpacked(const struct bench_op *op, unsigned step, const uint8_t *frame, size_t len,
    char *err, size_t errlen)
{
	Secretd__V1__Reply *env = NULL;
	ProtobufCMessage *body = NULL;
	const ProtobufCMessageDescriptor *d = NULL;
	bool ok = false;

	if (len < WIRE_HEADER_LEN)
		return fail_msg(err, errlen, "short reply");
	env = secretd__v1__reply__unpack(NULL, len - WIRE_HEADER_LEN, frame + WIRE_HEADER_LEN);
	if (env == NULL)
		return fail_msg(err, errlen, "protobuf-c cannot unpack the Reply");
	if (env->status != ST_OK) {
		(void)snprintf(err, errlen, "status %u: %s", env->status, env->message);
		goto done;
	}
	switch (op->kind) {
	case OP_GET:
		d = &secretd__v1__secret_get_reply__descriptor;
		break;
	case OP_LIST:
		d = &secretd__v1__secret_list_reply__descriptor;
		break;
	case OP_RESOLVE:
		d = &secretd__v1__secret_resolve_reply__descriptor;
		break;
	case OP_CREATE_TEMP:
	case OP_CREATE_PERSIST:
		d = step == 0 ? &secretd__v1__secret_create_reply__descriptor
		              : &secretd__v1__secret_drop_reply__descriptor;
		break;
	default:
		ok = true;
		goto done;
	}
	body = protobuf_c_message_unpack(d, NULL, env->body.len, env->body.data);
	if (body == NULL) {
		(void)snprintf(err, errlen, "protobuf-c cannot unpack the %s", d->name);
		goto done;
	}
	switch (op->kind) {
	case OP_GET: {
		const Secretd__V1__SecretGetReply *g = (const void *)body;
		const Secretd__V1__Secret *s = g->secret;

		ok = s != NULL && strcmp(s->name, GET_NAME) == 0 && s->n_fields == 1 &&
		     strcmp(s->fields[0]->key, "api_key") == 0 &&
		     s->fields[0]->value.len == GET_VALUE_LEN &&
		     memcmp(s->fields[0]->value.data, get_value, GET_VALUE_LEN) == 0;
		break;
	}
	case OP_LIST: {
		const Secretd__V1__SecretListReply *l = (const void *)body;

		ok = l->n_rows == op->population;
		for (size_t i = 0; ok && i < l->n_rows; i++)
			ok = strstr(l->rows[i]->secret_string, "api_key=redacted") != NULL &&
			     (i == 0 || strcmp(l->rows[i - 1]->name, l->rows[i]->name) <= 0);
		break;
	}
	case OP_RESOLVE: {
		const Secretd__V1__SecretResolveReply *r = (const void *)body;
		char want[64];

		(void)snprintf(want, sizeof(want), "fill_%06lu", op->resolve_target);
		ok = r->found && r->secret != NULL && strcmp(r->secret->name, want) == 0;
		break;
	}
	default:
		if (step == 0)
			ok = ((const Secretd__V1__SecretCreateReply *)(const void *)body)->created;
		else
			ok = ((const Secretd__V1__SecretDropReply *)(const void *)body)->dropped;
		break;
	}
	if (!ok)
		(void)snprintf(
		    err, errlen, "protobuf-c: the %s is not what was asked for", d->name);
done:
	if (body != NULL)
		protobuf_c_message_free_unpacked(body, NULL);
	secretd__v1__reply__free_unpacked(env, NULL);
	return ok;
}

int
bench_op_verify(
    const struct bench_op *op, nng_socket sock, int timeout_ms, char *err, size_t errlen)
{
	struct load_worker w = {.id = 0, .scratch = {NULL, 0}, .nonce = load_nonce()};
	/* An iteration number no requester uses. */
	uint64_t k = ((uint64_t)0xfffff << 32) | 1;
	char why[384];
	int rc = -1;

	for (unsigned step = 0; step < op->base.steps; step++) {
		nng_msg *msg = NULL;
		nng_msg *reply = NULL;
		int rv;

		if ((rv = op_build(&op->base, &w, k, step, &msg)) != 0 ||
		    (rv = load_call(sock, msg, timeout_ms, &reply)) != 0) {
			(void)snprintf(
			    err, errlen, "%s: %s", bench_op_name(op->kind), nng_strerror(rv));
			goto done;
		}
		if (!op_check(&op->base, &w, k, step, nng_msg_body(reply), nng_msg_len(reply), why,
		        sizeof(why)) ||
		    (!op->echo && op->kind != OP_GET_TEXT &&
		        !verify_unpacked(
		            op, step, nng_msg_body(reply), nng_msg_len(reply), why, sizeof(why)))) {
			(void)snprintf(err, errlen, "%s: %s", bench_op_name(op->kind), why);
			nng_msg_free(reply);
			goto done;
		}
		nng_msg_free(reply);
	}
	rc = 0;
done:
	wire_buf_free(&w.scratch);
	return rc;
}

int
bench_seed(nng_socket sock, int timeout_ms, char *err, size_t errlen)
{
	struct load_worker w = {.id = 0, .scratch = {NULL, 0}};
	struct bench_op op;
	struct wire_reply r;
	nng_msg *msg = NULL;
	nng_msg *reply = NULL;
	int rc = -1;
	int rv;

	bench_op_init(&op, OP_GET, false, NULL);
	if ((rv = build_create(&w, &op, GET_NAME, get_value, NULL, false, 0, &msg)) != 0 ||
	    (rv = load_call(sock, msg, timeout_ms, &reply)) != 0) {
		(void)snprintf(err, errlen, "cannot create %s: %s", GET_NAME, nng_strerror(rv));
		goto done;
	}
	if (!wire_reply_read(nng_msg_body(reply), nng_msg_len(reply), &r) || r.status != ST_OK) {
		(void)snprintf(err, errlen, "cannot create %s: status %u: %.*s", GET_NAME, r.status,
		    (int)r.message.len, (const char *)r.message.data);
		goto done;
	}
	rc = 0;
done:
	if (reply != NULL)
		nng_msg_free(reply);
	wire_buf_free(&w.scratch);
	return rc;
}

int
bench_populate(
    nng_socket sock, size_t *fillersp, size_t want, int timeout_ms, char *err, size_t errlen)
{
	size_t want_fillers = want > 0 ? want - 1 : 0; /* bench_get is one of them */
	struct load_spec spec = {.concurrency = FILL_BATCH_CONC, .timeout_ms = timeout_ms};
	struct load_result res;
	struct bench_op op;

	if (want_fillers == *fillersp)
		return 0;
	if (want_fillers > *fillersp) {
		bench_op_init(&op, OP_FILL, false, NULL);
		op.base_k = *fillersp;
		spec.count = want_fillers - *fillersp;
	} else {
		bench_op_init(&op, OP_UNFILL, false, NULL);
		op.base_k = want_fillers;
		spec.count = *fillersp - want_fillers;
	}
	spec.op = &op.base;
	if (load_run(sock, &spec, &res, err, errlen) != 0)
		return -1;
	*fillersp = want_fillers;
	return 0;
}

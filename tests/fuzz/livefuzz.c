/*
 * livefuzz.c: the live protocol fuzzer. Sends generated and mutated frames (see
 * livefuzz_gen.c) to a running secretd over every --url (ipc:// and tcp:// on loopback),
 * interleaved with valid requests whose answers it checks, then verifies that the secrets
 * it created before the run are intact, that the server still answers, and (with --pid)
 * that the server's resident memory did not keep growing.
 *
 * Usage: livefuzz --url URL [--url URL ...] [--frames N] [--seed S] [--token T]
 *                 [--max-frame BYTES] [--pid PID] [--time-limit SECONDS]
 *                 [--max-rss-growth-kb KB] [--check-every N]
 * Every frame must be answered as SPEC section 4 says (a binary Reply or one JSON line,
 * with the status the frame's header decides), except frames over the transport's cap
 * (the server drops the connection). Exit status 0 when every frame was answered as owed
 * and every check passed; 1 otherwise; 2 on a usage error.
 *
 * What it does not do: no remote hosts (loopback and ipc only: it refuses other URLs),
 * no TLS, no concurrency (one request at a time; the server's own workers still serve
 * both connections), and it never prints a secret value or frame bytes.
 *
 * Thread safety: single-threaded.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>

#include "livefuzz.h"
#include "secretd.pb-c.h"

#define LF_MAX_URLS 4
#define LF_KEEP 6
#define LF_REPLY_TIMEOUT_MS 10000

/* A secret created before the run; it must come back unchanged at the end. */
struct keep {
	char name[64];
	const char *type;
	bool persistent;
	char scope[64];
	const char *keys[3];
	char values[3][48];
	size_t n_fields;
};

struct opts {
	const char *urls[LF_MAX_URLS];
	size_t n_urls;
	unsigned long frames;
	uint64_t seed;
	const char *token;
	size_t max_frame;
	long pid;
	unsigned time_limit;
	long max_rss_growth_kb;
	unsigned check_every;
};

struct state {
	struct opts o;
	struct lf_gen_config gen;
	struct lf_rng rng;
	struct lf_conn conns[LF_MAX_URLS];
	struct keep keep[LF_KEEP];
	uint64_t next_id;
	unsigned long sent[LF_KIND_COUNT];
	unsigned long answered[LF_KIND_COUNT];
	unsigned long no_answer_by_design;
	unsigned long failures;
	unsigned long checks;
	unsigned long checks_failed;
	unsigned consecutive_silent;
	unsigned long raw_probes; /* transport headers declaring huge lengths */
};

/* Record a failure; print the first few. fmt never carries a value or frame bytes. */
static void __attribute__((format(printf, 2, 3))) fail(struct state *s, const char *fmt, ...)
{
	va_list ap;

	s->failures++;
	if (s->failures > 30)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "livefuzz: FAIL: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static double
now_s(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The server's VmRSS in KiB, or -1. */
static long
rss_kb(long pid)
{
	char path[64];
	char line[256];
	long kb = -1;
	FILE *f;

	if (pid <= 0)
		return -1;
	(void)snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	(void)fclose(f);
	return kb;
}

/* Whether hay[0..n) contains needle (a C string). */
static bool
contains(const void *hay, size_t n, const char *needle)
{
	const uint8_t *h = hay;
	size_t k = strlen(needle);

	for (size_t i = 0; k > 0 && i + k <= n; i++)
		if (h[i] == (uint8_t)needle[0] && memcmp(h + i, needle, k) == 0)
			return true;
	return false;
}

/* Whether hay[0..n) contains any kept secret's value. */
static bool
holds_kept_value(const struct state *s, const void *hay, size_t n)
{
	for (size_t i = 0; i < LF_KEEP; i++)
		for (size_t k = 0; k < s->keep[i].n_fields; k++)
			if (contains(hay, n, s->keep[i].values[k]))
				return true;
	return false;
}

/* Check a reply against what the frame was owed. Returns NULL or what is wrong. */
static const char *
check_reply(const struct state *s, enum lf_expect want, const uint8_t *r, size_t n)
{
	static const uint32_t owed[] = {
	    [EXPECT_BAD_HEADER] = 3, [EXPECT_VERSION] = 12, [EXPECT_TOO_LARGE] = 8};
	Secretd__V1__Reply *rep;
	const char *why = NULL;

	if (want == EXPECT_TEXT || want == EXPECT_TEXT_TOO_LARGE) {
		json_t *root = NULL;
		json_t *st;
		json_t *msg;

		if (n < 2 || r[n - 1] != '\n')
			return "text reply does not end with a newline";
		root = json_loadb((const char *)r, n - 1, 0, NULL);
		st = json_object_get(root, "status");
		msg = json_object_get(root, "message");
		if (!json_is_object(root) || !json_is_string(st))
			why = "text reply is not a JSON object with a status";
		else if (want == EXPECT_TEXT_TOO_LARGE &&
		         strcmp(json_string_value(st), "RESOURCE_EXHAUSTED") != 0)
			why = "oversized text frame not answered RESOURCE_EXHAUSTED";
		else if (strcmp(json_string_value(st), "OK") != 0 &&
		         (!json_is_string(msg) || json_string_length(msg) == 0))
			why = "text error without a message";
		else if (strcmp(json_string_value(st), "OK") != 0 &&
		         holds_kept_value(s, json_string_value(msg), json_string_length(msg)))
			why = "text error message holds a secret value";
		json_decref(root);
		return why;
	}
	if (n < 4 || memcmp(r, "\0SD\x01", 4) != 0)
		return "binary reply without the 00 53 44 01 header";
	rep = secretd__v1__reply__unpack(NULL, n - 4, r + 4);
	if (rep == NULL)
		return "binary reply envelope does not decode";
	if (rep->status > 16)
		why = "reply status outside the gRPC codes";
	else if (want != EXPECT_BINARY && rep->status != owed[want])
		why = want == EXPECT_BAD_HEADER ? "bad header not answered INVALID_ARGUMENT"
		      : want == EXPECT_VERSION  ? "unknown version not answered UNIMPLEMENTED"
		                                : "oversized frame not answered RESOURCE_EXHAUSTED";
	else if (rep->status != 0 && rep->message[0] == '\0')
		why = "error reply without a message";
	else if (rep->status != 0 && holds_kept_value(s, rep->message, strlen(rep->message)))
		why = "error message holds a secret value";
	secretd__v1__reply__free_unpacked(rep, NULL);
	return why;
}

/* The token to send on c: always on tcp, on ipc half the time (the uid makes it admin). */
static const char *
token_for(struct state *s, const struct lf_conn *c)
{
	if (s->o.token == NULL)
		return "";
	return !c->ipc || lf_chance(&s->rng, 50) ? s->o.token : "";
}

/*
 * A checked binary call: pack in, exchange, unpack the reply and its body. Returns the
 * reply status (or -1 when the exchange or decoding failed) and *outp on OK (caller frees
 * with protobuf_c_message_free_unpacked).
 */
static long
call(struct state *s, struct lf_conn *c, const char *method, const ProtobufCMessage *in,
    ProtobufCMessage **outp)
{
	const ProtobufCMethodDescriptor *m = protobuf_c_service_descriptor_get_method_by_name(
	    &secretd__v1__secrets__descriptor, method);
	struct lf_buf body = {0};
	struct lf_buf frame = {0};
	Secretd__V1__Reply *rep = NULL;
	nng_msg *msg = NULL;
	uint64_t id = ++s->next_id;
	long st = -1;

	*outp = NULL;
	if (m == NULL || !lf_buf_reserve(&body, protobuf_c_message_get_packed_size(in) + 1))
		goto done;
	body.len = protobuf_c_message_pack(in, body.data);
	if (!lf_request(&frame, method, body.data, body.len, token_for(s, c), id) ||
	    lf_exchange(c, frame.data, frame.len, LF_REPLY_TIMEOUT_MS, &msg) != 0)
		goto done;
	if (nng_msg_len(msg) < 4 || memcmp(nng_msg_body(msg), "\0SD\x01", 4) != 0)
		goto done;
	rep = secretd__v1__reply__unpack(
	    NULL, nng_msg_len(msg) - 4, (const uint8_t *)nng_msg_body(msg) + 4);
	if (rep == NULL || rep->request_id != id)
		goto done;
	if (rep->status == 0) {
		*outp = protobuf_c_message_unpack(m->output, NULL, rep->body.len, rep->body.data);
		if (*outp == NULL)
			goto done;
	}
	st = (long)rep->status;
done:
	if (rep != NULL)
		secretd__v1__reply__free_unpacked(rep, NULL);
	nng_msg_free(msg);
	lf_buf_free(&frame);
	lf_buf_free(&body);
	return st;
}

static struct lf_conn *
pick_conn(struct state *s)
{
	return &s->conns[lf_below(&s->rng, s->o.n_urls)];
}

static void
check(struct state *s, bool ok, const char *what)
{
	s->checks++;
	if (!ok) {
		s->checks_failed++;
		fail(s, "check failed: %s", what);
	}
}

/* Whether a Secret message equals kept secret k, values byte for byte. */
static bool
secret_matches(const Secretd__V1__Secret *sec, const struct keep *k)
{
	if (sec == NULL || strcmp(sec->name, k->name) != 0 || strcmp(sec->type, k->type) != 0 ||
	    sec->n_scope != 1 || strcmp(sec->scope[0], k->scope) != 0 ||
	    sec->n_fields != k->n_fields ||
	    sec->storage != (k->persistent ? SECRETD__V1__STORAGE__STORAGE_SQLCIPHER
	                                   : SECRETD__V1__STORAGE__STORAGE_MEMORY))
		return false;
	for (size_t i = 0; i < k->n_fields; i++) {
		bool found = false;

		for (size_t j = 0; j < sec->n_fields; j++)
			if (strcmp(sec->fields[j]->key, k->keys[i]) == 0 &&
			    sec->fields[j]->value.len == strlen(k->values[i]) &&
			    memcmp(sec->fields[j]->value.data, k->values[i],
			        sec->fields[j]->value.len) == 0)
				found = true;
		if (!found)
			return false;
	}
	return true;
}

/* Create the kept secrets: every type, both storages, random values. */
static bool
create_keep(struct state *s)
{
	static const char *const types[] = {"openai", "ollama", "azure_llm"};
	static const char *const keys[3][3] = {{"api_key", "base_url", NULL},
	    {"api_url", NULL, NULL}, {"api_key", "api_version", "resource_name"}};
	uint64_t tag = lf_rand(&s->rng);

	for (size_t i = 0; i < LF_KEEP; i++) {
		struct keep *k = &s->keep[i];
		Secretd__V1__SecretCreate in = SECRETD__V1__SECRET_CREATE__INIT;
		Secretd__V1__Field f[3];
		Secretd__V1__Field *fp[3];
		char *scope[1] = {k->scope};
		ProtobufCMessage *out = NULL;
		long st;

		(void)snprintf(k->name, sizeof(k->name), "lf-keep-%016" PRIx64 "-%zu", tag, i);
		(void)snprintf(k->scope, sizeof(k->scope), "lfscope-%016" PRIx64 "://%zu", tag, i);
		k->type = types[i % 3];
		k->persistent = i >= LF_KEEP / 2;
		k->n_fields = 0;
		for (size_t j = 0; j < 3 && keys[i % 3][j] != NULL; j++) {
			k->keys[j] = keys[i % 3][j];
			(void)snprintf(k->values[j], sizeof(k->values[j]),
			    "lfv-%016" PRIx64 "-%zu%zu", lf_rand(&s->rng), i, j);
			secretd__v1__field__init(&f[j]);
			f[j].key = (char *)k->keys[j];
			f[j].value.data = (uint8_t *)k->values[j];
			f[j].value.len = strlen(k->values[j]);
			fp[j] = &f[j];
			k->n_fields++;
		}
		in.name = k->name;
		in.type = (char *)k->type;
		in.fields = fp;
		in.n_fields = k->n_fields;
		in.scope = scope;
		in.n_scope = 1;
		in.persistent = k->persistent;
		st = call(s, &s->conns[i % s->o.n_urls], "Create", &in.base, &out);
		if (out != NULL)
			protobuf_c_message_free_unpacked(out, NULL);
		if (st != 0) {
			fail(s, "cannot create kept secret %zu (status %ld)", i, st);
			return false;
		}
	}
	return true;
}

/* Get kept secret i over a random connection and compare it. */
static void
check_keep_binary(struct state *s, size_t i)
{
	Secretd__V1__SecretGet in = SECRETD__V1__SECRET_GET__INIT;
	Secretd__V1__SecretGetReply *out;
	ProtobufCMessage *m = NULL;
	long st;

	in.name = s->keep[i].name;
	st = call(s, pick_conn(s), "Get", &in.base, &m);
	out = (Secretd__V1__SecretGetReply *)m;
	check(s, st == 0 && out != NULL && secret_matches(out->secret, &s->keep[i]),
	    "binary Get of a kept secret");
	if (out != NULL)
		secretd__v1__secret_get_reply__free_unpacked(out, NULL);
}

/* GET SECRET as a text frame and compare the JSON. */
static void
check_keep_text(struct state *s, size_t i)
{
	struct lf_conn *c = pick_conn(s);
	const struct keep *k = &s->keep[i];
	struct lf_buf f = {0};
	nng_msg *msg = NULL;
	json_t *root = NULL;
	json_t *fields;
	bool ok = false;

	if (s->o.token != NULL && (!c->ipc || lf_chance(&s->rng, 50)) &&
	    !(lf_buf_str(&f, "AUTH ") && lf_buf_str(&f, s->o.token) && lf_buf_str(&f, "\n")))
		goto done;
	if (!lf_buf_str(&f, "GET SECRET \"") || !lf_buf_str(&f, k->name) || !lf_buf_str(&f, "\"") ||
	    lf_exchange(c, f.data, f.len, LF_REPLY_TIMEOUT_MS, &msg) != 0)
		goto done;
	root = json_loadb(nng_msg_body(msg), nng_msg_len(msg), 0, NULL);
	fields = json_object_get(json_object_get(root, "secret"), "fields");
	ok = json_is_string(json_object_get(root, "status")) &&
	     strcmp(json_string_value(json_object_get(root, "status")), "OK") == 0 &&
	     json_is_object(fields) && json_object_size(fields) == k->n_fields;
	for (size_t j = 0; ok && j < k->n_fields; j++) {
		json_t *v = json_object_get(fields, k->keys[j]);

		ok = json_is_string(v) && strcmp(json_string_value(v), k->values[j]) == 0;
	}
done:
	check(s, ok, "text GET SECRET of a kept secret");
	json_decref(root);
	nng_msg_free(msg);
	lf_buf_free(&f);
}

/* Resolve a kept secret's scope. */
static void
check_resolve(struct state *s, size_t i)
{
	Secretd__V1__SecretResolve in = SECRETD__V1__SECRET_RESOLVE__INIT;
	Secretd__V1__SecretResolveReply *out;
	ProtobufCMessage *m = NULL;
	char path[96];
	long st;

	(void)snprintf(path, sizeof(path), "%s/model", s->keep[i].scope);
	in.path = path;
	in.type = (char *)s->keep[i].type;
	st = call(s, pick_conn(s), "Resolve", &in.base, &m);
	out = (Secretd__V1__SecretResolveReply *)m;
	check(s, st == 0 && out != NULL && out->found && secret_matches(out->secret, &s->keep[i]),
	    "Resolve of a kept secret's scope");
	if (out != NULL)
		secretd__v1__secret_resolve_reply__free_unpacked(out, NULL);
}

/* Create, read, drop and miss a scratch secret. */
static void
check_scratch(struct state *s, unsigned long n)
{
	Secretd__V1__SecretCreate cr = SECRETD__V1__SECRET_CREATE__INIT;
	Secretd__V1__SecretGet get = SECRETD__V1__SECRET_GET__INIT;
	Secretd__V1__SecretDrop drop = SECRETD__V1__SECRET_DROP__INIT;
	Secretd__V1__Field f = SECRETD__V1__FIELD__INIT;
	Secretd__V1__Field *fp[1] = {&f};
	Secretd__V1__SecretGetReply *got;
	ProtobufCMessage *out = NULL;
	struct lf_conn *c = pick_conn(s);
	char name[48];
	long st;

	(void)snprintf(name, sizeof(name), "lf-check-%lu", n);
	f.key = "API_URL";
	f.value.data = (uint8_t *)"http://lf-check:1";
	f.value.len = strlen("http://lf-check:1");
	cr.name = name;
	cr.type = "Ollama";
	cr.fields = fp;
	cr.n_fields = 1;
	st = call(s, c, "Create", &cr.base, &out);
	check(s, st == 0, "Create of a scratch secret");
	if (out != NULL)
		protobuf_c_message_free_unpacked(out, NULL);
	get.name = name;
	st = call(s, c, "Get", &get.base, &out);
	got = (Secretd__V1__SecretGetReply *)out;
	check(s,
	    st == 0 && got != NULL && got->secret != NULL && got->secret->n_fields == 1 &&
	        strcmp(got->secret->fields[0]->key, "api_url") == 0,
	    "Get of a scratch secret");
	if (got != NULL)
		secretd__v1__secret_get_reply__free_unpacked(got, NULL);
	drop.name = name;
	st = call(s, c, "Drop", &drop.base, &out);
	check(s, st == 0, "Drop of a scratch secret");
	if (out != NULL)
		protobuf_c_message_free_unpacked(out, NULL);
	st = call(s, c, "Get", &get.base, &out);
	check(s, st == 5, "Get of a dropped scratch secret is NOT_FOUND");
	if (out != NULL)
		protobuf_c_message_free_unpacked(out, NULL);
}

/* Drop every secret the frames left behind (not the kept ones), so that memory measured
 * afterwards is the server's own. Returns how many were dropped, or -1. */
static long
cleanup(struct state *s)
{
	Secretd__V1__SecretList in = SECRETD__V1__SECRET_LIST__INIT;
	Secretd__V1__SecretListReply *rows;
	ProtobufCMessage *m = NULL;
	long dropped = 0;

	if (call(s, &s->conns[0], "List", &in.base, &m) != 0)
		return -1;
	rows = (Secretd__V1__SecretListReply *)m;
	for (size_t i = 0; i < rows->n_rows; i++) {
		Secretd__V1__SecretDrop d = SECRETD__V1__SECRET_DROP__INIT;
		ProtobufCMessage *out = NULL;
		bool kept = false;

		for (size_t k = 0; k < LF_KEEP; k++)
			kept = kept || strcmp(rows->rows[i]->name, s->keep[k].name) == 0;
		if (kept)
			continue;
		d.name = rows->rows[i]->name;
		d.storage = rows->rows[i]->persistent ? SECRETD__V1__STORAGE__STORAGE_SQLCIPHER
		                                      : SECRETD__V1__STORAGE__STORAGE_MEMORY;
		if (call(s, &s->conns[0], "Drop", &d.base, &out) == 0)
			dropped++;
		if (out != NULL)
			protobuf_c_message_free_unpacked(out, NULL);
	}
	secretd__v1__secret_list_reply__free_unpacked(rows, NULL);
	return dropped;
}

/* One checked valid request, rotating through the kinds of check. */
static void
run_check(struct state *s, unsigned long n)
{
	size_t i = lf_below(&s->rng, LF_KEEP);

	switch (n % 4) {
	case 0:
		check_keep_binary(s, i);
		break;
	case 1:
		check_keep_text(s, i);
		break;
	case 2:
		check_resolve(s, i);
		break;
	default:
		check_scratch(s, n);
		break;
	}
}

/* A transport header declaring a huge length, followed by a few bytes, on a raw
 * connection: the server must drop it without reading on. */
static void
run_raw_probe(struct state *s, unsigned long n)
{
	const uint64_t lens[] = {s->gen.hard_max + 1, (uint64_t)1 << 31, 0xFFFFFFFFull,
	    (uint64_t)1 << 40, 0x7FFFFFFFFFFFFFFFull, 0xFFFFFFFFFFFFFFFFull};
	struct lf_conn *c = pick_conn(s);
	uint8_t junk[64];
	const char *why;

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)lf_rand(&s->rng);
	why = lf_raw_over_cap(c->url, junk, lf_below(&s->rng, sizeof(junk)),
	    lens[lf_below(&s->rng, sizeof(lens) / sizeof(lens[0]))]);
	s->raw_probes++;
	if (why != NULL)
		fail(s, "raw probe %lu on %s: %s", n, c->url, why);
}

/* Send one generated frame and check its answer. */
static void
run_frame(struct state *s, struct lf_buf *f, unsigned long n)
{
	enum lf_kind k = lf_generate(&s->rng, &s->gen, f);
	struct lf_conn *c = pick_conn(s);
	enum lf_expect want;
	nng_msg *msg = NULL;
	const char *why;
	int rv;

	if (k == LF_KIND_COUNT) {
		fail(s, "out of memory generating frame %lu", n);
		return;
	}
	want = lf_expect_of(f->data, f->len, &s->gen);
	s->sent[k]++;
	if (want == EXPECT_NOTHING) {
		/* Over the transport's cap: sent on a raw connection of its own (see
		 * raw_over_cap), which the server must close without an answer. */
		why = lf_raw_over_cap(c->url, f->data, f->len, (uint64_t)f->len + 4);
		if (why != NULL) {
			fail(s, "frame %lu (%s, %zu bytes, over the cap) on %s: %s", n,
			    lf_kind_name(k), f->len, c->url, why);
			return;
		}
		s->no_answer_by_design++;
		s->answered[k]++;
		return;
	}
	rv = lf_exchange(c, f->data, f->len, LF_REPLY_TIMEOUT_MS, &msg);
	if (rv != 0) {
		s->consecutive_silent++;
		fail(s, "frame %lu (%s, %zu bytes) on %s: no answer: %s", n, lf_kind_name(k),
		    f->len, c->url, nng_strerror(rv));
		return;
	}
	s->consecutive_silent = 0;
	why = check_reply(s, want, nng_msg_body(msg), nng_msg_len(msg));
	if (why != NULL)
		fail(s, "frame %lu (%s, %zu bytes) on %s: %s", n, lf_kind_name(k), f->len, c->url,
		    why);
	else
		s->answered[k]++;
	nng_msg_free(msg);
}

static int
parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {{"url", required_argument, NULL, 'u'},
	    {"frames", required_argument, NULL, 'n'}, {"seed", required_argument, NULL, 's'},
	    {"token", required_argument, NULL, 't'}, {"max-frame", required_argument, NULL, 'm'},
	    {"pid", required_argument, NULL, 'p'}, {"time-limit", required_argument, NULL, 'T'},
	    {"max-rss-growth-kb", required_argument, NULL, 'R'},
	    {"check-every", required_argument, NULL, 'c'}, {NULL, 0, NULL, 0}};
	int ch;

	o->frames = 100000;
	o->seed = (uint64_t)time(NULL);
	o->max_frame = 65536;
	o->time_limit = 900;
	o->max_rss_growth_kb = 65536;
	o->check_every = 10;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			if (o->n_urls == LF_MAX_URLS)
				return -1;
			o->urls[o->n_urls++] = optarg;
			break;
		case 'n':
			o->frames = strtoul(optarg, NULL, 10);
			break;
		case 's':
			o->seed = strtoull(optarg, NULL, 0);
			break;
		case 't':
			o->token = optarg;
			break;
		case 'm':
			o->max_frame = strtoul(optarg, NULL, 10);
			break;
		case 'p':
			o->pid = strtol(optarg, NULL, 10);
			break;
		case 'T':
			o->time_limit = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'R':
			o->max_rss_growth_kb = strtol(optarg, NULL, 10);
			break;
		case 'c':
			o->check_every = (unsigned)strtoul(optarg, NULL, 10);
			break;
		default:
			return -1;
		}
	}
	if (optind != argc || o->n_urls == 0 || o->max_frame < 256 || o->check_every == 0)
		return -1;
	for (size_t i = 0; i < o->n_urls; i++) {
		const char *u = o->urls[i];

		/* Loopback and ipc only: this program must never fuzz someone else's server. */
		if (strncmp(u, "ipc://", 6) != 0 && strncmp(u, "tcp://127.0.0.1:", 16) != 0 &&
		    strncmp(u, "tcp://localhost:", 16) != 0 &&
		    strncmp(u, "tcp://[::1]:", 12) != 0) {
			fprintf(
			    stderr, "livefuzz: %s is neither ipc:// nor tcp:// on loopback\n", u);
			return -1;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static struct state s;
	struct lf_buf frame = {0};
	unsigned long n = 0;
	unsigned long sent = 0;
	unsigned long answered = 0;
	long rss_start;
	long rss_warm = -1;
	long rss_end;
	long rss_peak;
	long left;
	double t0;
	double elapsed;
	int rv;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse_opts(argc, argv, &s.o) != 0) {
		fprintf(stderr,
		    "usage: livefuzz --url URL [--url URL...] [--frames N] [--seed S] "
		    "[--token T] [--max-frame BYTES] [--pid PID] [--time-limit SECONDS] "
		    "[--max-rss-growth-kb KB] [--check-every N]\n");
		return 2;
	}
	s.gen.max_frame = s.o.max_frame;
	s.gen.hard_max = s.o.max_frame * 4 > 1048576 ? s.o.max_frame * 4 : 1048576;
	s.gen.token = s.o.token != NULL ? s.o.token : "";
	s.gen.pool = 32;
	lf_rng_seed(&s.rng, s.o.seed);
	s.next_id = lf_rand(&s.rng) >> 16;
	printf("livefuzz: seed %" PRIu64 ", %lu frames, max frame %zu, %zu url(s)\n", s.o.seed,
	    s.o.frames, s.o.max_frame, s.o.n_urls);
	for (size_t i = 0; i < s.o.n_urls; i++) {
		if ((rv = lf_conn_open(&s.conns[i], s.o.urls[i])) != 0) {
			fprintf(stderr, "livefuzz: %s: %s\n", s.o.urls[i], nng_strerror(rv));
			return 1;
		}
	}
	if (!create_keep(&s))
		goto report;
	rss_start = rss_peak = rss_kb(s.o.pid);
	t0 = now_s();
	for (n = 0; n < s.o.frames; n++) {
		if (n % s.o.check_every == 0)
			run_check(&s, n / s.o.check_every);
		run_frame(&s, &frame, n);
		if (n % 500 == 250)
			run_raw_probe(&s, n);
		if (s.consecutive_silent >= 20) {
			fail(&s, "the server stopped answering after frame %lu", n);
			break;
		}
		if (n % 1000 == 999) {
			long r = rss_kb(s.o.pid);

			if ((n + 1) % 10000 == 0)
				printf("livefuzz: %lu frames, %lu failures, %.0f s, VmRSS %ld kB\n",
				    n + 1, s.failures, now_s() - t0, r);

			if (r > rss_peak)
				rss_peak = r;
			if (now_s() - t0 > s.o.time_limit) {
				fail(&s, "time limit of %u s reached after %lu frames",
				    s.o.time_limit, n + 1);
				n++;
				break;
			}
		}
		/* Warm-up: the first fifth of the run fills the allocator's pools and caches;
		 * memory is compared from there on, after removing what the frames created. */
		if (n + 1 == s.o.frames / 5) {
			if (cleanup(&s) < 0)
				fail(&s, "cleanup after warm-up failed");
			rss_warm = rss_kb(s.o.pid);
		}
	}
	elapsed = now_s() - t0;
	left = cleanup(&s);
	if (left < 0)
		fail(&s, "final cleanup failed");
	for (size_t i = 0; i < LF_KEEP; i++) {
		check_keep_binary(&s, i);
		check_keep_text(&s, i);
		check_resolve(&s, i);
	}
	check_scratch(&s, 0);
	rss_end = rss_kb(s.o.pid);
	if (rss_end > rss_peak)
		rss_peak = rss_end;

	for (int k = 0; k < LF_KIND_COUNT; k++) {
		sent += s.sent[k];
		answered += s.answered[k];
		printf("livefuzz:   %-18s sent %8lu  survived %8lu\n", lf_kind_name(k), s.sent[k],
		    s.answered[k]);
	}
	printf("livefuzz: frames sent %lu, survived %lu (%lu dropped by design: over the "
	       "transport cap), in %.1f s (%.0f/s); %lu checked requests, %lu failed; %ld "
	       "leftover secrets dropped\n",
	    sent, answered, s.no_answer_by_design, elapsed,
	    elapsed > 0 ? (double)sent / elapsed : 0, s.checks, s.checks_failed, left);
	printf("livefuzz: %lu raw transport probes with huge declared lengths, all dropped\n",
	    s.raw_probes);
	if (s.o.pid > 0) {
		printf(
		    "livefuzz: server VmRSS kB: start %ld, after warm-up %ld, end %ld, peak %ld\n",
		    rss_start, rss_warm, rss_end, rss_peak);
		if (rss_warm < 0 && s.o.frames >= 5)
			rss_warm = rss_start;
		if (rss_end < 0)
			fail(&s, "cannot read the server's VmRSS (pid %ld)", s.o.pid);
		else if (rss_warm >= 0 && rss_end - rss_warm > s.o.max_rss_growth_kb)
			fail(&s, "server memory grew by %ld kB after warm-up (limit %ld kB)",
			    rss_end - rss_warm, s.o.max_rss_growth_kb);
	}
	if (sent < s.o.frames)
		fail(&s, "only %lu of %lu frames were sent", sent, s.o.frames);
report:
	printf("livefuzz: %s (%lu failures)\n", s.failures == 0 ? "PASS" : "FAIL", s.failures);
	for (size_t i = 0; i < s.o.n_urls; i++)
		lf_conn_close(&s.conns[i]);
	lf_buf_free(&frame);
	return s.failures == 0 ? 0 : 1;
}

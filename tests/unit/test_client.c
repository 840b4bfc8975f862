/*
 * test_client.c: libsecretd without a secretd. Covers the status and storage names, the
 * default URL, argument and URL checking, calls to a URL where nothing listens, the
 * NULL-safety of the free functions, and, against a fake server played here with an
 * nng REP socket and the generated protobuf-c code, every call's request envelope and
 * reply decoding: good replies, server errors, bad headers, undecodable envelopes and
 * bodies, a reply to another request, silence (deadline), concurrent calls on one handle,
 * and close while a call is in flight (CANCELLED).
 *
 * Not here: the real server's behaviour (tests/integration).
 *
 * Thread safety: the fake server runs on its own thread; CHECKs run on the main thread
 * except in the concurrency test, whose workers only count failures atomically.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include <secretd.h>

#include "check.h"
#include "clock.h"
#include "secretd.pb-c.h"

static const uint8_t header[4] = {0x00, 0x53, 0x44, 0x01};

static void
sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	(void)nanosleep(&ts, NULL);
}

/* ---- names and defaults ------------------------------------------------------------ */

static void
test_status_str(void)
{
	static const char *const want[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT",
	    "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
	    "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
	    "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
	int i;

	for (i = 0; i <= 16; i++)
		CHECK_STR(secretd_status_str((secretd_status)i), want[i]);
	CHECK_STR(secretd_status_str((secretd_status)17), "UNKNOWN_STATUS");
	CHECK_STR(secretd_status_str((secretd_status)-1), "UNKNOWN_STATUS");
	CHECK_STR(secretd_status_str((secretd_status)1000), "UNKNOWN_STATUS");

	CHECK_STR(secretd_storage_str(SECRETD_STORAGE_ANY), "any");
	CHECK_STR(secretd_storage_str(SECRETD_STORAGE_MEMORY), "memory");
	CHECK_STR(secretd_storage_str(SECRETD_STORAGE_SQLCIPHER), "sqlcipher");
	CHECK(secretd_storage_str((secretd_storage)9) != NULL);
}

/* The version macros agree with each other and with meson's project version (passed in
 * as PROJECT_VERSION by tests/unit/meson.build). */
static void
test_version(void)
{
	char buf[64];

	(void)snprintf(buf, sizeof(buf), "%d.%d.%d", SECRETD_VERSION_MAJOR, SECRETD_VERSION_MINOR,
	    SECRETD_VERSION_PATCH);
	CHECK_STR(buf, SECRETD_VERSION_STRING);
	CHECK_STR(SECRETD_VERSION_STRING, PROJECT_VERSION);
	CHECK_STATUS(SECRETD_VERSION_NUMBER,
	    SECRETD_VERSION_MAJOR * 1000000 + SECRETD_VERSION_MINOR * 1000 + SECRETD_VERSION_PATCH);
	CHECK(SECRETD_VERSION_MINOR < 1000 && SECRETD_VERSION_PATCH < 1000);
}

static void
test_default_url(void)
{
	char buf[256];
	char want[256];
	char small[8];

	CHECK(setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1) == 0);
	CHECK_STATUS(secretd_default_url(buf, sizeof(buf)), SECRETD_OK);
	CHECK_STR(buf, "ipc:///run/user/4242/secretd.sock");

	CHECK(setenv("XDG_RUNTIME_DIR", "/run/user/4242/", 1) == 0);
	CHECK_STATUS(secretd_default_url(buf, sizeof(buf)), SECRETD_OK);
	CHECK_STR(buf, "ipc:///run/user/4242/secretd.sock");

	(void)snprintf(
	    want, sizeof(want), "ipc:///tmp/secretd-%lu/secretd.sock", (unsigned long)getuid());
	CHECK(setenv("XDG_RUNTIME_DIR", "relative/dir", 1) == 0); /* ignored, as XDG says */
	CHECK_STATUS(secretd_default_url(buf, sizeof(buf)), SECRETD_OK);
	CHECK_STR(buf, want);

	CHECK(unsetenv("XDG_RUNTIME_DIR") == 0);
	CHECK_STATUS(secretd_default_url(buf, sizeof(buf)), SECRETD_OK);
	CHECK_STR(buf, want);

	CHECK_STATUS(secretd_default_url(small, sizeof(small)), SECRETD_OUT_OF_RANGE);
	CHECK_STR(small, "");
	CHECK_STATUS(secretd_default_url(NULL, 10), SECRETD_INVALID_ARGUMENT);
}

static void
test_bad_open(void)
{
	static const char *const bad[] = {"", "foo://bar", "nonsense", "tcp://", "tcp://host",
	    "http://localhost:80", "tls+tcp://localhost:1"};
	secretd_options tls = {.tls_ca_file = "/nonexistent/ca.pem"};
	secretd_options half = {.tls_ca_file = "/etc/hostname", .tls_cert_file = "/x.pem"};
	secretd_client *client = (secretd_client *)&client; /* must be reset to NULL */
	secretd_error err;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&err, 0, sizeof(err));
		CHECK_STATUS(
		    secretd_client_open(bad[i], NULL, &client, &err), SECRETD_INVALID_ARGUMENT);
		CHECK(client == NULL);
		CHECK_STATUS(err.status, SECRETD_INVALID_ARGUMENT);
		CHECK(err.message[0] != '\0');
		client = (secretd_client *)&client;
	}
	/* TLS options for a plain URL, a CA file that does not exist, half a cert pair. */
	CHECK_STATUS(secretd_client_open("ipc:///tmp/x.sock", &tls, &client, &err),
	    SECRETD_INVALID_ARGUMENT);
	CHECK(strstr(err.message, "ipc:///tmp/x.sock") != NULL);
	CHECK_STATUS(secretd_client_open("tls+tcp://localhost:1", &tls, &client, &err),
	    SECRETD_INVALID_ARGUMENT);
	CHECK(strstr(err.message, "/nonexistent/ca.pem") != NULL);
	CHECK_STATUS(secretd_client_open("tls+tcp://localhost:1", &half, &client, &err),
	    SECRETD_INVALID_ARGUMENT);
	CHECK_STATUS(
	    secretd_client_open("ipc:///tmp/x.sock", NULL, NULL, &err), SECRETD_INVALID_ARGUMENT);
	CHECK_STATUS(secretd_client_open("", NULL, &client, NULL), SECRETD_INVALID_ARGUMENT);
}

/* A comma-separated list of addresses (a cluster's nodes): each dialed, spaces trimmed,
 * empty items skipped, a bad one named, at most 16. (Failover itself: tests/cluster.) */
static void
test_address_list(void)
{
	secretd_client *client = NULL;
	secretd_error err;
	char many[17 * 24 + 1] = "";

	CHECK_STATUS(
	    secretd_client_open("ipc:///tmp/a.sock,ipc:///tmp/b.sock", NULL, &client, &err),
	    SECRETD_OK);
	secretd_client_close(client);
	client = NULL;
	CHECK_STATUS(
	    secretd_client_open(" ipc:///tmp/a.sock , tcp://127.0.0.1:1,", NULL, &client, &err),
	    SECRETD_OK);
	secretd_client_close(client);
	client = NULL;
	CHECK_STATUS(secretd_client_open("ipc:///tmp/a.sock,nonsense", NULL, &client, &err),
	    SECRETD_INVALID_ARGUMENT);
	CHECK(client == NULL && strstr(err.message, "nonsense") != NULL);
	CHECK_STATUS(secretd_client_open(", ,", NULL, &client, &err), SECRETD_INVALID_ARGUMENT);
	CHECK(client == NULL);
	for (int i = 0; i < 17; i++) {
		char one[24];

		(void)snprintf(one, sizeof(one), "%sipc:///tmp/n%d.sock", i > 0 ? "," : "", i);
		(void)strcat(many, one);
	}
	CHECK_STATUS(secretd_client_open(many, NULL, &client, &err), SECRETD_INVALID_ARGUMENT);
	CHECK(client == NULL);
}

static void
test_null_safety(void)
{
	secretd_secret *secret = (secretd_secret *)&secret;
	secretd_rows *rows = (secretd_rows *)&rows;
	secretd_result *result = (secretd_result *)&result;
	secretd_create_args args = {.type = "openai"};
	secretd_error err;

	secretd_secret_free(NULL);
	secretd_rows_free(NULL);
	secretd_result_free(NULL);
	secretd_client_close(NULL);
	CHECK(secretd_secret_field(NULL, "api_key") == NULL);

	CHECK_STATUS(secretd_get(NULL, "x", SECRETD_STORAGE_ANY, 0, &secret, &err),
	    SECRETD_INVALID_ARGUMENT);
	CHECK(secret == NULL);
	CHECK_STATUS(secretd_list(NULL, NULL, 0, &rows, &err), SECRETD_INVALID_ARGUMENT);
	CHECK(rows == NULL);
	CHECK_STATUS(secretd_execute(NULL, "x", 0, &result, NULL), SECRETD_INVALID_ARGUMENT);
	CHECK(result == NULL);
	CHECK_STATUS(secretd_create(NULL, &args, 0, NULL, &err), SECRETD_INVALID_ARGUMENT);
	CHECK_STATUS(secretd_drop(NULL, "x", SECRETD_STORAGE_ANY, false, 0, NULL, &err),
	    SECRETD_INVALID_ARGUMENT);
	CHECK_STATUS(
	    secretd_resolve(NULL, "p", "openai", 0, &secret, &err), SECRETD_INVALID_ARGUMENT);
}

/* A URL where nothing listens: the call fails within its timeout. */
static void
test_no_server(const char *dir)
{
	char url[512];
	secretd_client *client = NULL;
	secretd_secret *secret = NULL;
	secretd_error err;
	secretd_status st;
	long start;

	(void)snprintf(url, sizeof(url), "ipc://%s/nobody.sock", dir);
	CHECK_STATUS(secretd_client_open(url, NULL, &client, &err), SECRETD_OK);
	start = (long)sd_now_ms();
	/* No server ever connected: UNAVAILABLE, never DEADLINE_EXCEEDED (transport.c tells
	 * the two apart by whether a pipe is up). */
	st = secretd_get(client, "x", SECRETD_STORAGE_ANY, 300, &secret, &err);
	CHECK_STATUS(st, SECRETD_UNAVAILABLE);
	CHECK((long)sd_now_ms() - start < 3000);
	CHECK(strstr(err.message, url) != NULL);
	CHECK(secret == NULL);
	/* No socket file: UNAVAILABLE after a short grace, not after the whole timeout. */
	start = (long)sd_now_ms();
	CHECK_STATUS(secretd_get(client, "x", SECRETD_STORAGE_ANY, 20000, &secret, &err),
	    SECRETD_UNAVAILABLE);
	CHECK((long)sd_now_ms() - start < 5000);
	secretd_client_close(client);

	CHECK_STATUS(secretd_client_open("tcp://127.0.0.1:1", NULL, &client, &err), SECRETD_OK);
	start = (long)sd_now_ms();
	st = secretd_get(client, "x", SECRETD_STORAGE_ANY, 300, &secret, &err);
	CHECK_STATUS(st, SECRETD_UNAVAILABLE);
	CHECK((long)sd_now_ms() - start < 3000);
	secretd_client_close(client);
}

/* ---- the fake server -------------------------------------------------------------- */

struct fake {
	nng_socket sock;
	pthread_t thread;
	atomic_int requests;
	atomic_int bad_requests; /* envelopes that broke the wire contract */
};

/* Send header + packed reply; or, with raw != NULL, exactly those bytes. */
static void
fake_send(struct fake *f, const Secretd__V1__Reply *reply, const void *raw, size_t raw_len)
{
	nng_msg *msg = NULL;
	size_t len =
	    raw != NULL ? raw_len : sizeof(header) + secretd__v1__reply__get_packed_size(reply);

	if (nng_msg_alloc(&msg, len) != 0)
		return;
	if (raw != NULL) {
		memcpy(nng_msg_body(msg), raw, raw_len);
	} else {
		memcpy(nng_msg_body(msg), header, sizeof(header));
		(void)secretd__v1__reply__pack(
		    reply, (uint8_t *)nng_msg_body(msg) + sizeof(header));
	}
	if (nng_sendmsg(f->sock, msg, 0) != 0)
		nng_msg_free(msg);
}

/* Reply OK with body packed from out. */
static void
fake_ok(struct fake *f, const Secretd__V1__Request *req, const ProtobufCMessage *out,
    uint64_t request_id)
{
	Secretd__V1__Reply reply = SECRETD__V1__REPLY__INIT;
	uint8_t buf[4096];

	reply.body.len = protobuf_c_message_pack(out, buf);
	reply.body.data = buf;
	reply.request_id = request_id;
	(void)req;
	fake_send(f, &reply, NULL, 0);
}

static void
fake_status(struct fake *f, const Secretd__V1__Request *req, uint32_t status, const char *reason,
    const char *message)
{
	Secretd__V1__Reply reply = SECRETD__V1__REPLY__INIT;

	reply.status = status;
	reply.reason = (char *)reason;
	reply.message = (char *)message;
	reply.request_id = req->request_id;
	fake_send(f, &reply, NULL, 0);
}

/* The secret every good Get/Resolve answers with; fields deliberately unsorted. */
static void
fake_secret(Secretd__V1__Secret *s, Secretd__V1__Field *f, Secretd__V1__Field **fp, char **scope,
    const char *name)
{
	secretd__v1__secret__init(s);
	secretd__v1__field__init(&f[0]);
	secretd__v1__field__init(&f[1]);
	f[0].key = "base_url";
	f[0].value.data = (uint8_t *)"http://b";
	f[0].value.len = 8;
	f[1].key = "api_key";
	f[1].value.data = (uint8_t *)"sk-1";
	f[1].value.len = 4;
	fp[0] = &f[0];
	fp[1] = &f[1];
	scope[0] = "openai://";
	scope[1] = "openai://x";
	s->name = (char *)name;
	s->type = "openai";
	s->provider = "config";
	s->storage = SECRETD__V1__STORAGE__STORAGE_SQLCIPHER;
	s->n_scope = 2;
	s->scope = scope;
	s->n_fields = 2;
	s->fields = fp;
}

static void
fake_get(struct fake *f, const Secretd__V1__Request *req, const Secretd__V1__SecretGet *in)
{
	Secretd__V1__SecretGetReply out = SECRETD__V1__SECRET_GET_REPLY__INIT;
	Secretd__V1__Secret s;
	Secretd__V1__Field fields[2];
	Secretd__V1__Field *fp[2];
	char *scope[2];
	static const uint8_t bad_version[] = {0x00, 0x53, 0x44, 0x02, 0x08, 0x00};
	static const uint8_t bad_envelope[] = {0x00, 0x53, 0x44, 0x01, 0xff, 0xff, 0xff};

	fake_secret(&s, fields, fp, scope, in->name);
	if (strcmp(in->name, "missing") == 0) {
		fake_status(f, req, SECRETD_NOT_FOUND, "", "Secret 'missing' not found");
	} else if (strcmp(in->name, "ambiguous") == 0) {
		fake_status(f, req, SECRETD_FAILED_PRECONDITION, "AMBIGUOUS",
		    "Secret 'ambiguous' is in both storages");
	} else if (strcmp(in->name, "bigstatus") == 0) {
		fake_status(f, req, 99, "", "");
	} else if (strcmp(in->name, "badversion") == 0) {
		fake_send(f, NULL, bad_version, sizeof(bad_version));
	} else if (strcmp(in->name, "textframe") == 0) {
		fake_send(f, NULL, "{\"status\":\"OK\"}\n", 16);
	} else if (strcmp(in->name, "empty") == 0) {
		fake_send(f, NULL, header, 2);
	} else if (strcmp(in->name, "badenvelope") == 0) {
		fake_send(f, NULL, bad_envelope, sizeof(bad_envelope));
	} else if (strcmp(in->name, "badbody") == 0) {
		Secretd__V1__Reply reply = SECRETD__V1__REPLY__INIT;

		reply.body.data = (uint8_t *)"\xff\xff\xff";
		reply.body.len = 3;
		reply.request_id = req->request_id;
		fake_send(f, &reply, NULL, 0);
	} else if (strcmp(in->name, "nosecret") == 0) {
		fake_ok(f, req, &out.base, req->request_id);
	} else if (strcmp(in->name, "wrongid") == 0) {
		out.secret = &s;
		fake_ok(f, req, &out.base, req->request_id + 1);
	} else if (strcmp(in->name, "silent") == 0) {
		/* no reply */
	} else if (strcmp(in->name, "check") == 0 &&
	           (strcmp(req->token, "tok") != 0 || req->timeout_ms != 1234 ||
	               req->request_id == 0 ||
	               in->storage != SECRETD__V1__STORAGE__STORAGE_MEMORY)) {
		/* The envelope carries the token, the call's timeout and a request id. */
		fake_status(f, req, SECRETD_INVALID_ARGUMENT, "", "envelope mismatch");
	} else {
		out.secret = &s;
		fake_ok(f, req, &out.base, req->request_id);
	}
}

static void
fake_execute(struct fake *f, const Secretd__V1__Request *req, const Secretd__V1__Statement *in)
{
	Secretd__V1__StatementReply out = SECRETD__V1__STATEMENT_REPLY__INIT;
	Secretd__V1__SecretCreateReply created = SECRETD__V1__SECRET_CREATE_REPLY__INIT;
	Secretd__V1__SecretDropReply dropped = SECRETD__V1__SECRET_DROP_REPLY__INIT;
	Secretd__V1__SecretRow row = SECRETD__V1__SECRET_ROW__INIT;
	Secretd__V1__SecretRow *rows[1] = {&row};
	Secretd__V1__ResolveRow rrow = SECRETD__V1__RESOLVE_ROW__INIT;
	Secretd__V1__ResolveRow *rrows[1] = {&rrow};
	Secretd__V1__Secret s;
	Secretd__V1__Field fields[2];
	Secretd__V1__Field *fp[2];
	char *scope[2];
	char *row_scope[1] = {"ollama://"};
	char long_name[SECRETD_NAME_MAX + 8];

	fake_secret(&s, fields, fp, scope, "sec");
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	if (strncmp(in->text, "created-long ", 13) == 0 ||
	    strncmp(in->text, "dropped-long ", 13) == 0) {
		/* A name of the length the statement asks for ("created-long 256"). */
		size_t n = (size_t)strtoul(in->text + 13, NULL, 10);

		long_name[n < sizeof(long_name) ? n : sizeof(long_name) - 1] = '\0';
		out.kind = in->text[0] == 'c' ? SECRETD__V1__STATEMENT_REPLY__KIND__KIND_CREATED
		                              : SECRETD__V1__STATEMENT_REPLY__KIND__KIND_DROPPED;
		created.name = long_name;
		dropped.name = long_name;
		out.created = in->text[0] == 'c' ? &created : NULL;
		out.dropped = in->text[0] == 'd' ? &dropped : NULL;
	} else if (strncmp(in->text, "resolved-as ", 12) == 0) {
		out.kind = SECRETD__V1__STATEMENT_REPLY__KIND__KIND_RESOLVED;
		rrow.name = "w2";
		rrow.persistent = (char *)in->text + 12;
		rrow.storage = "memory";
		out.n_resolved = 1;
		out.resolved = rrows;
	} else if (strcmp(in->text, "created") == 0) {
		out.kind = SECRETD__V1__STATEMENT_REPLY__KIND__KIND_CREATED;
		created.name = "c1";
		created.storage = SECRETD__V1__STORAGE__STORAGE_MEMORY;
		created.created = 1;
		out.created = &created;
	} else if (strcmp(in->text, "dropped") == 0) {
		out.kind = SECRETD__V1__STATEMENT_REPLY__KIND__KIND_DROPPED;
		dropped.name = "d1";
		dropped.storage = SECRETD__V1__STORAGE__STORAGE_SQLCIPHER;
		dropped.dropped = 1;
		out.dropped = &dropped;
	} else if (strcmp(in->text, "rows") == 0) {
		out.kind = SECRETD__V1__STATEMENT_REPLY__KIND__KIND_ROWS;
		row.name = "r1";
		row.type = "ollama";
		row.provider = "config";
		row.persistent = 0;
		row.storage = "memory";
		row.n_scope = 1;
		row.scope = row_scope;
		row.secret_string = "name=r1;type=ollama;provider=config;serializable=true;"
		                    "scope=ollama://;api_url=redacted";
		out.n_rows = 1;
		out.rows = rows;
	} else if (strcmp(in->text, "resolved") == 0) {
		out.kind = SECRETD__V1__STATEMENT_REPLY__KIND__KIND_RESOLVED;
		rrow.name = "w1";
		rrow.persistent = "PERSISTENT";
		rrow.storage = "sqlcipher";
		out.n_resolved = 1;
		out.resolved = rrows;
	} else if (strcmp(in->text, "secret") == 0) {
		out.kind = SECRETD__V1__STATEMENT_REPLY__KIND__KIND_SECRET;
		out.secret = &s;
	} else if (strcmp(in->text, "secretless") == 0) {
		out.kind = SECRETD__V1__STATEMENT_REPLY__KIND__KIND_SECRET;
	} else if (strcmp(in->text, "badkind") == 0) {
		out.kind = (Secretd__V1__StatementReply__Kind)42;
	} else {
		fake_status(f, req, SECRETD_INVALID_ARGUMENT, "SYNTAX",
		    "syntax error at or near \"x\" (offset 0)");
		return;
	}
	fake_ok(f, req, &out.base, req->request_id);
}

/* Answer one request by method, through the same descriptor the client uses. */
static void
fake_handle(struct fake *f, const Secretd__V1__Request *req)
{
	const ProtobufCMethodDescriptor *m = protobuf_c_service_descriptor_get_method_by_name(
	    &secretd__v1__secrets__descriptor, req->method);
	ProtobufCMessage *in;

	if (m == NULL) {
		atomic_fetch_add(&f->bad_requests, 1);
		fake_status(f, req, SECRETD_UNIMPLEMENTED, "", "no such method");
		return;
	}
	in = protobuf_c_message_unpack(m->input, NULL, req->body.len, req->body.data);
	if (in == NULL) {
		atomic_fetch_add(&f->bad_requests, 1);
		fake_status(f, req, SECRETD_INVALID_ARGUMENT, "", "undecodable body");
		return;
	}
	if (strcmp(req->method, "Get") == 0) {
		fake_get(f, req, (Secretd__V1__SecretGet *)in);
	} else if (strcmp(req->method, "Execute") == 0) {
		fake_execute(f, req, (Secretd__V1__Statement *)in);
	} else if (strcmp(req->method, "Create") == 0) {
		const Secretd__V1__SecretCreate *c = (const void *)in;
		Secretd__V1__SecretCreateReply out = SECRETD__V1__SECRET_CREATE_REPLY__INIT;
		int ok = strcmp(c->type, "openai") == 0 && c->n_fields == 2 &&
		         strcmp(c->fields[0]->key, "api_key") == 0 &&
		         c->fields[0]->value.len == 4 &&
		         memcmp(c->fields[0]->value.data, "sk-2", 4) == 0 &&
		         c->fields[1]->value.len == 3 && c->n_scope == 1 &&
		         strcmp(c->scope[0], "openai://") == 0 &&
		         c->on_conflict == SECRETD__V1__ON_CONFLICT__ON_CONFLICT_REPLACE;

		if (!ok) {
			fake_status(f, req, SECRETD_INVALID_ARGUMENT, "", "create mismatch");
		} else {
			out.name = c->name[0] != '\0' ? c->name : "__default_openai";
			out.storage = c->persistent ? SECRETD__V1__STORAGE__STORAGE_SQLCIPHER
			                            : SECRETD__V1__STORAGE__STORAGE_MEMORY;
			out.created = 1;
			fake_ok(f, req, &out.base, req->request_id);
		}
	} else if (strcmp(req->method, "Drop") == 0) {
		const Secretd__V1__SecretDrop *d = (const void *)in;
		Secretd__V1__SecretDropReply out = SECRETD__V1__SECRET_DROP_REPLY__INIT;

		out.name = d->if_exists ? "" : d->name;
		out.storage = d->storage;
		out.dropped = !d->if_exists;
		fake_ok(f, req, &out.base, req->request_id);
	} else if (strcmp(req->method, "List") == 0) {
		const Secretd__V1__SecretList *l = (const void *)in;
		Secretd__V1__SecretListReply out = SECRETD__V1__SECRET_LIST_REPLY__INIT;
		Secretd__V1__SecretRow r[2] = {
		    SECRETD__V1__SECRET_ROW__INIT, SECRETD__V1__SECRET_ROW__INIT};
		Secretd__V1__SecretRow *rp[2] = {&r[0], &r[1]};
		char *sc[2] = {"a://", "b://"};

		r[0].name = "alpha";
		r[0].type = l->type[0] != '\0' ? l->type : "openai";
		r[0].storage = "memory";
		r[0].n_scope = 2;
		r[0].scope = sc;
		r[0].secret_string = l->unredacted ? "api_key=sk" : "api_key=redacted";
		r[1].name = "beta";
		r[1].persistent = 1;
		r[1].storage = "sqlcipher";
		out.n_rows = 2;
		out.rows = rp;
		fake_ok(f, req, &out.base, req->request_id);
	} else if (strcmp(req->method, "Resolve") == 0) {
		const Secretd__V1__SecretResolve *r = (const void *)in;
		Secretd__V1__SecretResolveReply out = SECRETD__V1__SECRET_RESOLVE_REPLY__INIT;
		Secretd__V1__Secret s;
		Secretd__V1__Field fields[2];
		Secretd__V1__Field *fp[2];
		char *scope[2];

		fake_secret(&s, fields, fp, scope, "resolved");
		if (strcmp(r->path, "none") != 0) {
			out.found = 1;
			out.secret = &s;
		}
		fake_ok(f, req, &out.base, req->request_id);
	}
	protobuf_c_message_free_unpacked(in, NULL);
}

static void *
fake_run(void *arg)
{
	struct fake *f = arg;

	for (;;) {
		nng_msg *msg = NULL;
		Secretd__V1__Request *req;
		const uint8_t *body;

		if (nng_recvmsg(f->sock, &msg, 0) != 0)
			break;
		atomic_fetch_add(&f->requests, 1);
		body = nng_msg_body(msg);
		if (nng_msg_len(msg) < sizeof(header) ||
		    memcmp(body, header, sizeof(header)) != 0) {
			atomic_fetch_add(&f->bad_requests, 1);
			nng_msg_free(msg);
			continue;
		}
		req = secretd__v1__request__unpack(
		    NULL, nng_msg_len(msg) - sizeof(header), body + sizeof(header));
		nng_msg_free(msg);
		if (req == NULL) {
			atomic_fetch_add(&f->bad_requests, 1);
			continue;
		}
		fake_handle(f, req);
		secretd__v1__request__free_unpacked(req, NULL);
	}
	return NULL;
}

static int
fake_start(struct fake *f, const char *url)
{
	memset(f, 0, sizeof(*f));
	if (nng_rep0_open(&f->sock) != 0)
		return -1;
	if (nng_listen(f->sock, url, NULL, 0) != 0 ||
	    pthread_create(&f->thread, NULL, fake_run, f) != 0) {
		(void)nng_close(f->sock);
		return -1;
	}
	return 0;
}

static void
fake_stop(struct fake *f)
{
	(void)nng_close(f->sock);
	(void)pthread_join(f->thread, NULL);
}

/* ---- calls against the fake ---------------------------------------------------------- */

static void
test_get(secretd_client *client)
{
	secretd_secret *s = NULL;
	secretd_error err;
	const secretd_field *field;

	CHECK_STATUS(secretd_get(client, "s1", SECRETD_STORAGE_ANY, 2000, &s, &err), SECRETD_OK);
	CHECK_STATUS(err.status, SECRETD_OK);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	CHECK_STR(s->name, "s1");
	CHECK_STR(s->type, "openai");
	CHECK_STR(s->provider, "config");
	CHECK_STATUS(s->storage, SECRETD_STORAGE_SQLCIPHER);
	CHECK_STATUS(s->n_scope, 2);
	CHECK_STR(s->scope[0], "openai://");
	CHECK_STR(s->scope[1], "openai://x");
	CHECK_STATUS(s->n_fields, 2);
	CHECK_STR(s->fields[0].key, "api_key"); /* sorted by key */
	CHECK_STR(s->fields[1].key, "base_url");
	CHECK_STATUS(s->fields[0].value_len, 4);
	CHECK(memcmp(s->fields[0].value, "sk-1", 5) == 0); /* NUL-terminated */
	field = secretd_secret_field(s, "BASE_URL");
	CHECK(field != NULL && field->value_len == 8 && strcmp(field->value, "http://b") == 0);
	CHECK(secretd_secret_field(s, "nope") == NULL);
	secretd_secret_free(s);
}

static void
test_failures(secretd_client *client)
{
	static const char *const internal[] = {
	    "badversion", "textframe", "empty", "badenvelope", "badbody", "nosecret", "wrongid"};
	secretd_secret *s = NULL;
	secretd_error err;
	size_t i;
	long start;

	CHECK_STATUS(
	    secretd_get(client, "missing", SECRETD_STORAGE_ANY, 2000, &s, &err), SECRETD_NOT_FOUND);
	CHECK(s == NULL);
	CHECK_STATUS(err.status, SECRETD_NOT_FOUND);
	CHECK_STR(err.reason, "");
	CHECK_STR(err.message, "Secret 'missing' not found");

	CHECK_STATUS(secretd_get(client, "ambiguous", SECRETD_STORAGE_ANY, 2000, &s, &err),
	    SECRETD_FAILED_PRECONDITION);
	CHECK_STR(err.reason, "AMBIGUOUS");

	CHECK_STATUS(
	    secretd_get(client, "bigstatus", SECRETD_STORAGE_ANY, 2000, &s, NULL), SECRETD_UNKNOWN);

	for (i = 0; i < sizeof(internal) / sizeof(internal[0]); i++) {
		memset(&err, 0, sizeof(err));
		CHECK_STATUS(secretd_get(client, internal[i], SECRETD_STORAGE_ANY, 2000, &s, &err),
		    SECRETD_INTERNAL);
		CHECK(s == NULL);
		CHECK(err.message[0] != '\0');
		if (strcmp(internal[i], "nosecret") != 0)
			CHECK(strstr(err.message, "ipc://") != NULL); /* names the URL */
	}

	start = (long)sd_now_ms();
	CHECK_STATUS(secretd_get(client, "silent", SECRETD_STORAGE_ANY, 300, &s, &err),
	    SECRETD_DEADLINE_EXCEEDED);
	CHECK((long)sd_now_ms() - start >= 250 && (long)sd_now_ms() - start < 3000);
	CHECK(strstr(err.message, "ipc://") != NULL);

	CHECK_STATUS(
	    secretd_get(client, "x", (secretd_storage)7, 0, &s, &err), SECRETD_INVALID_ARGUMENT);
}

static void
test_envelope(const char *url)
{
	secretd_options opts = {.token = "tok"};
	secretd_client *client = NULL;
	secretd_secret *s = NULL;
	secretd_error err;

	CHECK_STATUS(secretd_client_open(url, &opts, &client, &err), SECRETD_OK);
	CHECK_STATUS(
	    secretd_get(client, "check", SECRETD_STORAGE_MEMORY, 1234, &s, &err), SECRETD_OK);
	secretd_secret_free(s);
	secretd_client_close(client);
	/* Without a token the envelope's token is "" and the fake says so. */
	CHECK_STATUS(secretd_client_open(url, NULL, &client, &err), SECRETD_OK);
	CHECK_STATUS(secretd_get(client, "check", SECRETD_STORAGE_MEMORY, 1234, &s, &err),
	    SECRETD_INVALID_ARGUMENT);
	CHECK_STR(err.message, "envelope mismatch");
	secretd_client_close(client);
}

static void
test_create_drop_list_resolve(secretd_client *client)
{
	const secretd_field fields[] = {
	    {.key = "api_key", .value = "sk-2"},                  /* value_len 0: strlen */
	    {.key = "base_url", .value = "h\0x", .value_len = 3}, /* explicit length */
	};
	const char *const scope[] = {"openai://"};
	secretd_create_args args = {.type = "openai",
	    .fields = fields,
	    .n_fields = 2,
	    .scope = scope,
	    .n_scope = 1,
	    .persistent = true,
	    .on_conflict = SECRETD_CONFLICT_REPLACE};
	secretd_list_args largs = {.unredacted = true, .type = "ollama"};
	secretd_create_result cres;
	secretd_drop_result dres;
	secretd_rows *rows = NULL;
	secretd_secret *s = NULL;
	secretd_error err;

	CHECK_STATUS(secretd_create(client, &args, 0, &cres, &err), SECRETD_OK);
	CHECK_STR(err.message, "OK");
	CHECK_STR(cres.name, "__default_openai");
	CHECK_STATUS(cres.storage, SECRETD_STORAGE_SQLCIPHER);
	CHECK(cres.created);
	CHECK_STATUS(secretd_create(client, &args, 0, NULL, NULL), SECRETD_OK);
	args.on_conflict = (secretd_conflict)5;
	CHECK_STATUS(secretd_create(client, &args, 0, &cres, &err), SECRETD_INVALID_ARGUMENT);

	CHECK_STATUS(
	    secretd_drop(client, "d", SECRETD_STORAGE_MEMORY, false, 0, &dres, &err), SECRETD_OK);
	CHECK_STR(dres.name, "d");
	CHECK_STATUS(dres.storage, SECRETD_STORAGE_MEMORY);
	CHECK(dres.dropped);
	CHECK_STATUS(
	    secretd_drop(client, "d", SECRETD_STORAGE_ANY, true, 0, &dres, &err), SECRETD_OK);
	CHECK(!dres.dropped);

	CHECK_STATUS(secretd_list(client, &largs, 0, &rows, &err), SECRETD_OK);
	CHECK(rows != NULL && rows->n_rows == 2);
	if (rows != NULL && rows->n_rows == 2) {
		CHECK_STR(rows->rows[0].name, "alpha");
		CHECK_STR(rows->rows[0].type, "ollama");
		CHECK_STR(rows->rows[0].provider, "");
		CHECK(!rows->rows[0].persistent);
		CHECK_STR(rows->rows[0].storage, "memory");
		CHECK_STATUS(rows->rows[0].n_scope, 2);
		CHECK_STR(rows->rows[0].scope[1], "b://");
		CHECK_STR(rows->rows[0].secret_string, "api_key=sk");
		CHECK_STR(rows->rows[1].name, "beta");
		CHECK(rows->rows[1].persistent);
		CHECK_STATUS(rows->rows[1].n_scope, 0);
	}
	secretd_rows_free(rows);
	CHECK_STATUS(secretd_list(client, NULL, 0, &rows, &err), SECRETD_OK);
	CHECK(rows != NULL && rows->n_rows == 2 &&
	      strcmp(rows->rows[0].secret_string, "api_key=redacted") == 0);
	secretd_rows_free(rows);

	/* The fakes echo the name: SECRETD_NAME_MAX bytes come back whole, a longer one
	 * (which no secretd sends: --max-name is capped at SECRETD_NAME_MAX) fails the call
	 * rather than being cut. */
	{
		char name[SECRETD_NAME_MAX + 2];

		memset(name, 'n', sizeof(name) - 1);
		name[SECRETD_NAME_MAX] = '\0';
		args.name = name;
		args.on_conflict = SECRETD_CONFLICT_REPLACE;
		CHECK_STATUS(secretd_create(client, &args, 0, &cres, &err), SECRETD_OK);
		CHECK(strcmp(cres.name, name) == 0);
		CHECK_STATUS(
		    secretd_drop(client, name, SECRETD_STORAGE_MEMORY, false, 0, &dres, &err),
		    SECRETD_OK);
		CHECK(strcmp(dres.name, name) == 0);
		name[SECRETD_NAME_MAX] = 'n';
		name[SECRETD_NAME_MAX + 1] = '\0';
		CHECK_STATUS(secretd_create(client, &args, 0, &cres, &err), SECRETD_INTERNAL);
		CHECK(strstr(err.message, "longer than 255 bytes") != NULL);
		CHECK_STATUS(cres.name[0], '\0');
		CHECK_STATUS(secretd_create(client, &args, 0, NULL, &err), SECRETD_INTERNAL);
		CHECK_STATUS(
		    secretd_drop(client, name, SECRETD_STORAGE_MEMORY, false, 0, &dres, &err),
		    SECRETD_INTERNAL);
		CHECK_STATUS(dres.name[0], '\0');
		args.name = NULL;
	}

	CHECK_STATUS(secretd_resolve(client, "openai://x", "openai", 0, &s, &err), SECRETD_OK);
	CHECK(s != NULL && strcmp(s->name, "resolved") == 0);
	secretd_secret_free(s);
	s = (secretd_secret *)&s;
	CHECK_STATUS(secretd_resolve(client, "none", "openai", 0, &s, &err), SECRETD_OK);
	CHECK(s == NULL);
}

static void
test_execute(secretd_client *client)
{
	secretd_result *r = NULL;
	secretd_error err;

	CHECK_STATUS(secretd_execute(client, "created", 0, &r, &err), SECRETD_OK);
	CHECK(r != NULL && r->kind == SECRETD_RESULT_CREATED &&
	      strcmp(r->created.name, "c1") == 0 && r->created.storage == SECRETD_STORAGE_MEMORY &&
	      r->created.created);
	secretd_result_free(r);

	CHECK_STATUS(secretd_execute(client, "dropped", 0, &r, &err), SECRETD_OK);
	CHECK(r != NULL && r->kind == SECRETD_RESULT_DROPPED &&
	      strcmp(r->dropped.name, "d1") == 0 &&
	      r->dropped.storage == SECRETD_STORAGE_SQLCIPHER && r->dropped.dropped);
	secretd_result_free(r);

	CHECK_STATUS(secretd_execute(client, "rows", 0, &r, &err), SECRETD_OK);
	CHECK(r != NULL && r->kind == SECRETD_RESULT_ROWS && r->rows != NULL &&
	      r->rows->n_rows == 1 && strcmp(r->rows->rows[0].name, "r1") == 0 &&
	      r->rows->rows[0].n_scope == 1 && strcmp(r->rows->rows[0].scope[0], "ollama://") == 0);
	secretd_result_free(r);

	CHECK_STATUS(secretd_execute(client, "resolved", 0, &r, &err), SECRETD_OK);
	CHECK(r != NULL && r->kind == SECRETD_RESULT_RESOLVED && r->n_resolved == 1 &&
	      strcmp(r->resolved[0].name, "w1") == 0 && r->resolved[0].persistent &&
	      strcmp(r->resolved[0].storage, "sqlcipher") == 0);
	secretd_result_free(r);

	/* which_secret()'s persistent is a bool in the C API; a row that is neither
	 * TEMPORARY nor PERSISTENT breaks the wire contract. */
	CHECK_STATUS(secretd_execute(client, "resolved-as TEMPORARY", 0, &r, &err), SECRETD_OK);
	CHECK(r != NULL && r->kind == SECRETD_RESULT_RESOLVED && r->n_resolved == 1 &&
	      !r->resolved[0].persistent && strcmp(r->resolved[0].storage, "memory") == 0);
	secretd_result_free(r);
	CHECK_STATUS(
	    secretd_execute(client, "resolved-as persistent", 0, &r, &err), SECRETD_INTERNAL);
	CHECK(r == NULL);

	/* Names: SECRETD_NAME_MAX bytes come back whole; a longer one is never cut, the
	 * call fails. */
	CHECK_STATUS(secretd_execute(client, "created-long 255", 0, &r, &err), SECRETD_OK);
	CHECK(r != NULL && r->kind == SECRETD_RESULT_CREATED &&
	      strlen(r->created.name) == SECRETD_NAME_MAX);
	secretd_result_free(r);
	CHECK_STATUS(secretd_execute(client, "dropped-long 255", 0, &r, &err), SECRETD_OK);
	CHECK(r != NULL && r->kind == SECRETD_RESULT_DROPPED &&
	      strlen(r->dropped.name) == SECRETD_NAME_MAX);
	secretd_result_free(r);
	CHECK_STATUS(secretd_execute(client, "created-long 256", 0, &r, &err), SECRETD_INTERNAL);
	CHECK(r == NULL);
	CHECK_STATUS(secretd_execute(client, "dropped-long 256", 0, &r, &err), SECRETD_INTERNAL);
	CHECK(r == NULL);

	CHECK_STATUS(secretd_execute(client, "secret", 0, &r, &err), SECRETD_OK);
	CHECK(r != NULL && r->kind == SECRETD_RESULT_SECRET && r->secret != NULL &&
	      strcmp(r->secret->name, "sec") == 0 && r->secret->n_fields == 2 &&
	      strcmp(r->secret->fields[0].key, "api_key") == 0);
	secretd_result_free(r);

	CHECK_STATUS(secretd_execute(client, "secretless", 0, &r, &err), SECRETD_INTERNAL);
	CHECK(r == NULL);
	CHECK_STATUS(secretd_execute(client, "badkind", 0, &r, &err), SECRETD_INTERNAL);
	CHECK(r == NULL);
	CHECK_STATUS(secretd_execute(client, "x", 0, &r, &err), SECRETD_INVALID_ARGUMENT);
	CHECK_STR(err.reason, "SYNTAX");
	CHECK(r == NULL);
}

struct worker {
	secretd_client *client;
	atomic_int *failures;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	int i;

	for (i = 0; i < 50; i++) {
		secretd_secret *s = NULL;
		secretd_error err;

		if (secretd_get(w->client, "s1", SECRETD_STORAGE_ANY, 5000, &s, &err) !=
		        SECRETD_OK ||
		    s->n_fields != 2 || strcmp(s->fields[0].value, "sk-1") != 0)
			atomic_fetch_add(w->failures, 1);
		secretd_secret_free(s);
	}
	return NULL;
}

static void
test_concurrent(secretd_client *client)
{
	enum { N = 8 };
	pthread_t threads[N];
	struct worker w;
	atomic_int failures;
	int i;

	atomic_init(&failures, 0);
	w.client = client;
	w.failures = &failures;
	for (i = 0; i < N; i++)
		CHECK(pthread_create(&threads[i], NULL, worker_run, &w) == 0);
	for (i = 0; i < N; i++)
		CHECK(pthread_join(threads[i], NULL) == 0);
	CHECK_STATUS(atomic_load(&failures), 0);
}

struct blocked {
	secretd_client *client;
	secretd_status status;
};

static void *
blocked_run(void *arg)
{
	struct blocked *b = arg;
	secretd_secret *s = NULL;

	b->status = secretd_get(b->client, "silent", SECRETD_STORAGE_ANY, -1, &s, NULL);
	secretd_secret_free(s);
	return NULL;
}

/* Close while a call waits forever: the call ends CANCELLED, close returns. */
static void
test_close_cancels(const char *url)
{
	struct blocked b = {.status = SECRETD_OK};
	pthread_t thread;
	secretd_error err;
	long start;

	CHECK_STATUS(secretd_client_open(url, NULL, &b.client, &err), SECRETD_OK);
	CHECK(pthread_create(&thread, NULL, blocked_run, &b) == 0);
	sleep_ms(300);
	start = (long)sd_now_ms();
	secretd_client_close(b.client);
	CHECK(pthread_join(thread, NULL) == 0);
	CHECK_STATUS(b.status, SECRETD_CANCELLED);
	CHECK((long)sd_now_ms() - start < 3000);
}

int
main(void)
{
	char dir[] = "/tmp/secretd-test-client-XXXXXX";
	char url[512];
	struct fake fake;
	secretd_client *client = NULL;
	secretd_error err;

	test_status_str();
	test_version();
	test_default_url();
	test_bad_open();
	test_address_list();
	test_null_safety();
	if (mkdtemp(dir) == NULL) {
		CHECK(!"mkdtemp");
		return check_report();
	}
	test_no_server(dir);

	(void)snprintf(url, sizeof(url), "ipc://%s/fake.sock", dir);
	CHECK(fake_start(&fake, url) == 0);
	CHECK_STATUS(secretd_client_open(url, NULL, &client, &err), SECRETD_OK);
	test_get(client);
	test_failures(client);
	test_create_drop_list_resolve(client);
	test_execute(client);
	test_concurrent(client);
	secretd_client_close(client);
	test_envelope(url);
	test_close_cancels(url);
	CHECK_STATUS(atomic_load(&fake.bad_requests), 0);
	fake_stop(&fake);

	(void)snprintf(url, sizeof(url), "%s/fake.sock", dir);
	(void)unlink(url);
	(void)rmdir(dir);
	return check_report();
}

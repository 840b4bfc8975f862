/*
 * service.c: one request frame in, one reply frame out (SPEC section 4).
 *
 * Binary frames: check the 4-byte header, unpack the envelope, authenticate, find the
 * method in the generated service descriptor, unpack the body with the method's input
 * descriptor, run the one handler for that method, and pack the output straight into the
 * reply buffer. There is no per-method code here: the descriptor drives everything.
 * Text frames go to text.c, which runs the same Execute handler.
 *
 * Every allocation comes from the request's arena (protobuf-c unpacks into it too), so
 * nothing a request touched outlives it unwiped.
 */
#include "service.h"

#include <assert.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "dedup.h"
#include "handlers.h"
#include "notify.h"
#include "pb.h"
#include "store.h"
#include "text.h"

/* "\0SD" and the protocol version. */
static const uint8_t frame_magic[3] = {0x00, 'S', 'D'};
enum { FRAME_VERSION = 1, FRAME_HEADER = 4 };

/* The handler of each method of service Secrets, found by the descriptor's method name,
 * and whether a call may change state (and so is remembered for resends: dedup.h). */
struct method_entry {
	const char *name;
	handler_fn fn;
	bool may_mutate;
};

static const struct method_entry method_handlers[] = {
    {"Create", handle_create, true},
    {"Drop", handle_drop, true},
    {"List", handle_list, false},
    {"Get", handle_get, false},
    {"Resolve", handle_resolve, false},
    {"Execute", handle_execute, true},
    {"Rekey", handle_rekey, false},
    {"Subscribe", handle_subscribe, false},
    {"Health", handle_health, false},
};

/* Wraps the caller's reply allocator to see the reply frame, for dedup_finish. */
struct reply_capture {
	reply_alloc_fn alloc;
	void *arg;
	uint8_t *buf;
	size_t len;
};

static uint8_t *
capture_alloc(void *arg, size_t len)
{
	struct reply_capture *rc = arg;

	rc->buf = rc->alloc(rc->arg, len);
	rc->len = len;
	return rc->buf;
}

/*
 * A call parked on its store write (see service_handle_async). Two events end the wait,
 * in either order: the store's done callback and the service's arm (the service has
 * stacked what the reply needs). Whichever comes second runs the rest: the handler's
 * finish, the reply, and (only when the store came second) the server's done.
 */
struct service_park {
	write_finish_fn finish;
	void *finish_arg;
	store_status sst;
	bool created;
	atomic_int left; /* 2 events to go */
	struct call_info *info;
	void (*reply)(void *ctx);
	void *reply_ctx;
	/* Room for what the reply needs (service_park_ctx), so arming cannot fail. */
	_Alignas(max_align_t) unsigned char ctx[SERVICE_PARK_CTX];
};

void *
service_park_ctx(struct call_info *info)
{
	return info->park->ctx;
}

/* The store's answer arrived; the second event runs the rest. */
static void
park_store_done(void *arg, store_status sst, bool created)
{
	struct service_park *p = arg;

	p->sst = sst;
	p->created = created;
	if (atomic_fetch_sub(&p->left, 1) != 1)
		return;
	(void)p->finish(p->finish_arg, p->sst, p->created);
	p->reply(p->reply_ctx);
	p->info->done(p->info->done_arg);
}

bool
service_park_arm(struct call_info *info, void (*reply)(void *ctx), void *ctx)
{
	struct service_park *p = info->park;

	p->reply = reply;
	p->reply_ctx = ctx;
	*info->pendingp = true;
	if (atomic_fetch_sub(&p->left, 1) != 1)
		return false; /* p and everything of this call belong to the store's thread now */
	*info->pendingp = false;
	(void)p->finish(p->finish_arg, p->sst, p->created);
	return true;
}

/* A park for rq's write, or NULL when the write is to be made now. */
static struct service_park *
park_new(struct request *rq, struct store *st, write_finish_fn finish, void *arg)
{
	struct service_park *p;

	if (rq->info->done == NULL || rq->info->park != NULL || !store_writes_async(st))
		return NULL;
	p = arena_alloc(rq->arena, sizeof(*p));
	if (p == NULL)
		return NULL; /* then synchronously: slower, not wrong */
	p->finish = finish;
	p->finish_arg = arg;
	p->sst = STORE_IO;
	p->info = rq->info;
	atomic_init(&p->left, 2);
	rq->info->park = p;
	return p;
}

enum status
request_put(struct request *rq, struct store *st, struct store_secret *s, enum store_conflict mode,
    write_finish_fn finish, void *arg)
{
	struct service_park *p = park_new(rq, st, finish, arg);
	bool created = false;
	store_status sst;

	if (p != NULL) {
		store_put_async(st, s, mode, rq->info->request_id, park_store_done, p);
		return ST_OK;
	}
	/* The request id goes with a persistent write to a shared store, so that a resend
	 * through another node finds its own write (store.h, put_tagged). */
	sst = store_put_tagged(st, s, mode, rq->info->request_id, &created);
	return finish(arg, sst, created);
}

enum status
request_remove(
    struct request *rq, struct store *st, const char *name, write_finish_fn finish, void *arg)
{
	struct service_park *p = park_new(rq, st, finish, arg);

	if (p != NULL) {
		store_remove_async(st, name, park_store_done, p);
		return ST_OK;
	}
	/* The request id goes with it too: a shared store answers a resent drop whose first
	 * attempt committed as done (store.h, remove_tagged). */
	return finish(arg, store_remove_tagged(st, name, rq->info->request_id), false);
}

void
limits_default(struct limits *l)
{
	l->max_frame = 64 * 1024;
	l->max_name = 255;
	l->max_value = 16 * 1024;
	l->max_fields = 16;
	l->max_scope = 16;
	l->max_secrets = 1000000;
}

static const struct method_entry *
method_entry_for(const char *name)
{
	for (size_t i = 0; i < sizeof(method_handlers) / sizeof(method_handlers[0]); i++)
		if (strcmp(method_handlers[i].name, name) == 0)
			return &method_handlers[i];
	return NULL;
}

static size_t
varint_size(size_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/*
 * Pack header + Reply{status, reason, message, request_id} and, when body is non-NULL,
 * field 4 (body) written by hand so that the output message is packed straight into the
 * reply buffer with no intermediate copy. Protobuf readers accept fields in any order.
 */
static enum status
write_reply(const struct outcome *oc, uint64_t request_id, uint64_t store_rev,
    const ProtobufCMessage *body, reply_alloc_fn alloc, void *alloc_arg,
    const struct notify *notify, uint64_t rev)
{
	pb_reply env = SECRETD__V1__REPLY__INIT;
	size_t env_len;
	size_t body_len = 0;
	size_t total;
	uint8_t *buf;
	uint8_t *p;

	env.status = (uint32_t)oc->status;
	env.reason = (char *)(oc->reason != NULL ? oc->reason : "");
	env.message = (char *)oc->message;
	env.request_id = request_id;
	env.epoch = notify_epoch(notify);
	env.rev = rev;
	env.store_rev = store_rev;
	env_len = secretd__v1__reply__get_packed_size(&env);
	total = FRAME_HEADER + env_len;
	if (body != NULL) {
		body_len = protobuf_c_message_get_packed_size(body);
		total += 1 + varint_size(body_len) + body_len;
	}
	buf = alloc(alloc_arg, total);
	if (buf == NULL)
		return ST_RESOURCE_EXHAUSTED;
	memcpy(buf, frame_magic, sizeof(frame_magic));
	buf[3] = FRAME_VERSION;
	p = buf + FRAME_HEADER;
	p += secretd__v1__reply__pack(&env, p);
	if (body != NULL) {
		size_t v = body_len;

		*p++ = (4 << 3) | 2; /* field 4, length-delimited */
		while (v >= 0x80) {
			*p++ = (uint8_t)(v | 0x80);
			v >>= 7;
		}
		*p++ = (uint8_t)v;
		(void)protobuf_c_message_pack(body, p);
	}
	return ST_OK;
}

/*
 * Whether every string in an unpacked message (nested ones too) is free of NUL bytes.
 * protobuf-c copies a string's bytes and adds a NUL, so a string holding a NUL would be
 * silently cut short at it ("a\0junk" read as "a"): compare each string's length with the
 * size protobuf-c allocated for it. Driven by the descriptor, so it covers every message.
 */
static bool
strings_clean(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m + f->offset;
		size_t n = 1;
		void *const *items = (void *const *)(const void *)base;

		if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *(const size_t *)(const void *)((const char *)m + f->quantifier_offset);
			items = *(void *const *const *)(const void *)base;
		}
		for (size_t k = 0; k < n; k++) {
			const void *item = items[k];

			if (item == NULL)
				continue;
			if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
				if (!strings_clean(item))
					return false;
			} else if (item != protobuf_c_empty_string &&
			           strlen(item) + 1 != arena_pb_size(item)) {
				return false;
			}
		}
	}
	return true;
}

void
service_authenticate(struct service *svc, struct caller *caller, const char *token)
{
	caller->token_id[0] = '\0';
	caller->role = caller->transport_role;
	if (token != NULL && token[0] != '\0') {
		enum role r =
		    auth_check(svc->auth, token, caller->token_id, sizeof(caller->token_id));

		/* A presented token that is wrong is an error even for a peer the transport
		 * trusts: the caller meant to use it. */
		caller->role = r;
	}
}

/* What the binary reply needs when it is made after a parked write (arena memory). */
struct binary_cont {
	struct service *svc;
	struct call_info *info;
	uint64_t request_id;
	ProtobufCMessage *out;
	struct reply_capture capture;
	enum dedup_result dd;
	uint64_t fp;
	uint64_t rev; /* notify_rev when the call began (for a call that changed nothing) */
};

/* Make the reply frame and tell dedup; the status as service_handle's. The one place a
 * binary Reply is made, for parked calls and the others alike. */
static enum status
binary_finish(struct binary_cont *c)
{
	const struct outcome *oc = &c->info->outcome;
	enum status st;

	st = write_reply(oc, c->request_id, store_revision(c->svc->persistent),
	    oc->status == ST_OK ? c->out : NULL, capture_alloc, &c->capture, c->svc->notify,
	    c->info->mutating ? notify_rev(c->svc->notify) : c->rev);
	if (c->dd == DEDUP_NEW)
		dedup_finish(c->svc->dedup, c->request_id, c->fp,
		    st == ST_OK && c->info->mutating ? c->capture.buf : NULL, c->capture.len);
	return st;
}

static void
binary_reply_parked(void *ctx)
{
	(void)binary_finish(ctx);
}

static enum status
handle_binary(struct service *svc, struct caller *caller, const uint8_t *frame, size_t len,
    struct arena *a, reply_alloc_fn alloc, void *alloc_arg, struct call_info *info)
{
	ProtobufCAllocator pa = {arena_pb_alloc, arena_pb_free, a};
	const ProtobufCServiceDescriptor *sd = &secretd__v1__secrets__descriptor;
	const ProtobufCMethodDescriptor *method;
	struct outcome *oc = &info->outcome;
	pb_request *env = NULL;
	ProtobufCMessage *in = NULL;
	ProtobufCMessage *out = NULL;
	struct request rq = {svc, caller, a, info};
	const struct method_entry *entry;
	struct reply_capture capture = {alloc, alloc_arg, NULL, 0};
	enum dedup_result dd = DEDUP_OFF;
	/* Read before any store is looked at: what this call reads holds every change up to
	 * rev (notify.h); a call that changes state reports rev as it is after its change. */
	uint64_t rev = notify_rev(svc->notify);
	uint64_t fp = 0;
	uint64_t request_id = 0;
	unsigned idx;

	if (len < FRAME_HEADER || memcmp(frame, frame_magic, sizeof(frame_magic)) != 0) {
		outcome_set(oc, ST_INVALID_ARGUMENT, "BAD_HEADER",
		    "bad frame header: a binary frame starts with 00 53 44 <version>");
		goto reply;
	}
	if (frame[3] != FRAME_VERSION) {
		outcome_set(oc, ST_UNIMPLEMENTED, "VERSION",
		    "protocol version %u is not supported; this server speaks version %d", frame[3],
		    FRAME_VERSION);
		goto reply;
	}
	if (len > svc->limits.max_frame) {
		outcome_set(oc, ST_RESOURCE_EXHAUSTED, "FRAME_TOO_LARGE",
		    "frame of %zu bytes is over the limit of %zu bytes", len,
		    svc->limits.max_frame);
		goto reply;
	}
	env = secretd__v1__request__unpack(&pa, len - FRAME_HEADER, frame + FRAME_HEADER);
	if (env == NULL) {
		outcome_set(oc, ST_INVALID_ARGUMENT, "BAD_FRAME",
		    "the request envelope is not a valid secretd.v1.Request");
		goto reply;
	}
	request_id = env->request_id;
	info->request_id = request_id;
	if (!strings_clean(&env->base)) {
		outcome_set(oc, ST_INVALID_ARGUMENT, "BAD_FRAME",
		    "a string in the request envelope holds a NUL byte");
		goto reply;
	}
	method = protobuf_c_service_descriptor_get_method_by_name(sd, env->method);
	if (method == NULL) {
		outcome_set(
		    oc, ST_UNIMPLEMENTED, "UNKNOWN_METHOD", "unknown method '%.64s'", env->method);
		goto reply;
	}
	/* protobuf-c only asserts the index and never checks the handler: check both. */
	idx = (unsigned)(method - sd->methods);
	entry = idx < sd->n_methods ? method_entry_for(method->name) : NULL;
	if (entry == NULL || entry->fn == NULL) {
		outcome_set(oc, ST_UNIMPLEMENTED, "UNKNOWN_METHOD", "method '%s' has no handler",
		    method->name);
		goto reply;
	}
	info->method = method->name;
	service_authenticate(svc, caller, env->token);
	if (caller->role == ROLE_NONE) {
		outcome_set(oc, ST_UNAUTHENTICATED,
		    env->token[0] != '\0' ? "BAD_TOKEN" : "NO_TOKEN",
		    env->token[0] != '\0' ? "the token is not valid"
		                          : "this connection needs a token");
		goto reply;
	}
	/* Read your writes across nodes: not before this node has what the client saw. */
	if (env->min_store_rev > 0 &&
	    !store_wait_revision(svc->persistent, env->min_store_rev, svc->read_wait_ms)) {
		outcome_set(oc, ST_UNAVAILABLE, "STALE",
		    "this node's copy of the persistent store is at revision %llu, behind revision "
		    "%llu that the client has seen; try another node",
		    (unsigned long long)store_revision(svc->persistent),
		    (unsigned long long)env->min_store_rev);
		goto reply;
	}
	if (entry->may_mutate && svc->dedup != NULL) {
		uint8_t *stored = NULL;
		size_t stored_len = 0;

		/* The caller's token and role are part of the fingerprint, so nobody gets
		 * another caller's answer by reusing its id. (Not the peer address: a resend
		 * comes on a new connection with a new port.) */
		fp = dedup_fingerprint(method->name, env->body.data, env->body.len) ^
		     (dedup_fingerprint(caller->token_id, NULL, 0) * 31u + (uint64_t)caller->role);
		dd = dedup_begin(svc->dedup, request_id, fp, &stored, &stored_len);
		if (dd == DEDUP_REPLAY) {
			uint8_t *buf = alloc(alloc_arg, stored_len);

			outcome_set(oc, ST_OK, "DUPLICATE", "a resent request: the first reply");
			if (buf != NULL)
				memcpy(buf, stored, stored_len);
			explicit_bzero(stored, stored_len);
			free(stored);
			return buf != NULL ? ST_OK : ST_RESOURCE_EXHAUSTED;
		}
	}
	in = protobuf_c_message_unpack(method->input, &pa, env->body.len, env->body.data);
	if (in == NULL) {
		outcome_set(oc, ST_INVALID_ARGUMENT, "BAD_BODY",
		    "the body is not a valid %s message", method->input->name);
		goto reply;
	}
	if (!strings_clean(in)) {
		outcome_set(oc, ST_INVALID_ARGUMENT, "BAD_BODY",
		    "a string in the %s message holds a NUL byte", method->input->name);
		goto reply;
	}
	out = arena_alloc(a, method->output->sizeof_message);
	if (out == NULL) {
		outcome_set(oc, ST_RESOURCE_EXHAUSTED, "NO_MEMORY", "out of memory");
		goto reply;
	}
	protobuf_c_message_init(method->output, out);
	if (entry->fn(&rq, in, out) != ST_OK)
		out = NULL;
	if (info->park != NULL) {
		struct binary_cont *c = service_park_ctx(info);

		static_assert(sizeof(*c) <= SERVICE_PARK_CTX, "SERVICE_PARK_CTX is too small");
		*c = (struct binary_cont){svc, info, request_id, out, capture, dd, fp, rev};
		if (!service_park_arm(info, binary_reply_parked, c))
			return ST_OK;
	}
reply: {
	struct binary_cont c = {svc, info, request_id, out, capture, dd, fp, rev};

	return binary_finish(&c);
}
}

enum status
service_handle(struct service *svc, struct caller *caller, const uint8_t *frame, size_t len,
    struct arena *a, reply_alloc_fn alloc, void *alloc_arg, struct call_info *info)
{
	return service_handle_async(
	    svc, caller, frame, len, a, alloc, alloc_arg, info, NULL, NULL, NULL);
}

enum status
service_handle_async(struct service *svc, struct caller *caller, const uint8_t *frame, size_t len,
    struct arena *a, reply_alloc_fn alloc, void *alloc_arg, struct call_info *info,
    void (*done)(void *arg), void *done_arg, bool *pendingp)
{
	struct call_info local;

	if (info == NULL)
		info = &local;
	memset(info, 0, sizeof(*info));
	if (done != NULL && pendingp != NULL && info != &local) {
		info->done = done;
		info->done_arg = done_arg;
		info->pendingp = pendingp;
		*pendingp = false;
	}
	info->method = "";
	info->name = "";
	info->storage = "";
	info->outcome.reason = "";
	caller->role = ROLE_NONE;
	if (len > 0 && frame[0] != 0) {
		info->text = true;
		return text_handle(svc, caller, frame, len, a, alloc, alloc_arg, info);
	}
	return handle_binary(svc, caller, frame, len, a, alloc, alloc_arg, info);
}

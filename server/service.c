/*
 * service.c: the front door. One request frame in, one reply frame out (SPEC section 4),
 * binary and text frames alike:
 *
 *   frame limit -> codec by the first byte (codec.h) -> decode -> authenticate once
 *   (auth.h) -> read-your-writes wait -> resend check (dedup.h) -> unpack the input with
 *   the method's descriptor -> the method's handler (dispatch.h) -> the codec's encoder.
 *
 * There is no per-method and no per-codec code here: the descriptor drives the dispatch and
 * the codec owns the bytes. A call whose store write is parked (service_handle_async) is
 * replied to later, on the store's thread, through the same encoder.
 *
 * Every allocation comes from the request's arena (protobuf-c unpacks into it too), so
 * nothing a request touched outlives it unwiped.
 */
#include "service.h"

#include <assert.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "dedup.h"
#include "handlers.h"
#include "notify.h"
#include "pb.h"
#include "store.h"

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

enum status
service_init(struct service *svc, char *err, size_t errlen)
{
	size_t n;
	const struct method_binding *b = dispatch_bindings(&n);

	return dispatch_build(&svc->dispatch, &secretd__v1__secrets__descriptor, b, n, err, errlen);
}

/* A call from its decoding to its reply: what the reply needs, also after a parked
 * write (then it lives in the park's ctx). */
struct call {
	struct service *svc;
	struct call_info *info;
	const struct codec *codec;
	uint64_t request_id;
	ProtobufCMessage *out; /* the output message; NULL when the handler did not run */
	struct reply_capture capture;
	enum dedup_result dd;
	uint64_t fp;
	uint64_t rev; /* notify_rev when the call began (for a call that changed nothing) */
};

/* Make the reply frame through the call's codec and tell dedup; the status as
 * service_handle's. The one place a reply is made, for parked calls and the others. */
static enum status
call_reply(struct call *c)
{
	struct reply_args r = {
	    c->svc, c->info, c->request_id, c->out, c->rev, capture_alloc, &c->capture};
	enum status st = c->codec->encode(&r);

	if (c->dd == DEDUP_NEW)
		dedup_finish(c->svc->dedup, c->request_id, c->fp,
		    st == ST_OK && c->info->mutating ? c->capture.buf : NULL, c->capture.len);
	return st;
}

static void
call_reply_parked(void *ctx)
{
	(void)call_reply(ctx);
}

/*
 * The resend check of a method remembered for resends: DEDUP_REPLAY with the first reply
 * already handed to alloc (*stp its status), or DEDUP_NEW / DEDUP_OFF to run the call.
 * The caller's token and role are part of the fingerprint, so nobody gets another caller's
 * answer by reusing its id. (Not the peer address: a resend comes on a new connection.)
 */
static enum dedup_result
resend_check(struct call *c, const struct caller *caller, const struct decoded *d,
    reply_alloc_fn alloc, void *alloc_arg, enum status *stp)
{
	uint8_t *stored = NULL;
	size_t stored_len = 0;
	uint8_t *buf;

	c->fp = dedup_fingerprint(d->method->desc->name, d->body.data, d->body.len) ^
	        (dedup_fingerprint(caller->token_id, NULL, 0) * 31u + (uint64_t)caller->role);
	c->dd = dedup_begin(c->svc->dedup, c->request_id, c->fp, &stored, &stored_len);
	if (c->dd != DEDUP_REPLAY)
		return c->dd;
	outcome_set(
	    &c->info->outcome, ST_OK, REASON_DUPLICATE, "a resent request: the first reply");
	buf = alloc(alloc_arg, stored_len);
	if (buf != NULL)
		memcpy(buf, stored, stored_len);
	explicit_bzero(stored, stored_len);
	free(stored);
	*stp = buf != NULL ? ST_OK : ST_RESOURCE_EXHAUSTED;
	return DEDUP_REPLAY;
}

/* The input message of d, unpacked into the arena unless the codec built it. NULL with
 * the outcome set when the body is not a valid message of the method's input type. */
static ProtobufCMessage *
call_input(struct decoded *d, struct arena *a, struct outcome *oc)
{
	ProtobufCAllocator pa = {arena_pb_alloc, arena_pb_free, a};
	const ProtobufCMethodDescriptor *m = d->method->desc;
	ProtobufCMessage *in;

	if (d->in != NULL)
		return d->in;
	in = protobuf_c_message_unpack(m->input, &pa, d->body.len, d->body.data);
	if (in == NULL) {
		outcome_set(oc, ST_INVALID_ARGUMENT, REASON_BAD_BODY,
		    "the body is not a valid %s message", m->input->name);
		return NULL;
	}
	if (!wire_strings_clean(in)) {
		outcome_set(oc, ST_INVALID_ARGUMENT, REASON_BAD_BODY,
		    "a string in the %s message holds a NUL byte", m->input->name);
		return NULL;
	}
	return in;
}

/* The front door (see the top of this file). Everything is as service_handle_async's. */
static enum status
front_door(struct service *svc, struct caller *caller, const uint8_t *frame, size_t len,
    struct arena *a, reply_alloc_fn alloc, void *alloc_arg, struct call_info *info)
{
	struct outcome *oc = &info->outcome;
	struct decoded d = {0};
	struct request rq = {svc, caller, a, info};
	ProtobufCMessage *in;
	ProtobufCMessage *out;
	enum status st = ST_OK;
	/* rev is read before any store is looked at: what this call reads holds every change
	 * up to rev (notify.h); a call that changes state reports rev after its change. */
	struct call c = {svc, info, &wire_codec, 0, NULL, {alloc, alloc_arg, NULL, 0}, DEDUP_OFF, 0,
	    notify_rev(svc->notify)};

	if (len > 0 && frame[0] != 0) {
		c.codec = &text_codec;
		info->text = true;
	}
	if (c.codec->method != NULL)
		info->method = c.codec->method;
	if (len > svc->limits.max_frame) {
		outcome_set(oc, ST_RESOURCE_EXHAUSTED, REASON_FRAME_TOO_LARGE,
		    "frame of %zu bytes is over the limit of %zu bytes", len,
		    svc->limits.max_frame);
		goto reply;
	}
	st = c.codec->decode(svc, frame, len, a, &d, oc);
	if (d.method != NULL)
		info->method = d.method->desc->name;
	c.request_id = d.request_id;
	info->request_id = d.request_id;
	if (st != ST_OK)
		goto reply;
	auth_authenticate(svc->auth, caller, d.token);
	if (caller->role == ROLE_NONE) {
		bool sent = d.token != NULL;

		outcome_set(oc, ST_UNAUTHENTICATED, sent ? REASON_BAD_TOKEN : REASON_NO_TOKEN, "%s",
		    sent ? "the token is not valid" : c.codec->no_token_message);
		goto reply;
	}
	/* Read your writes across nodes: not before this node has what the client saw. */
	if (d.min_store_rev > 0 &&
	    !store_wait_revision(svc->persistent, d.min_store_rev, svc->read_wait_ms)) {
		outcome_set(oc, ST_UNAVAILABLE, REASON_STALE,
		    "this node's copy of the persistent store is at revision %llu, behind revision "
		    "%llu that the client has seen; try another node",
		    (unsigned long long)store_revision(svc->persistent),
		    (unsigned long long)d.min_store_rev);
		goto reply;
	}
	if (d.method->binding->remembered_for_resend && c.request_id != 0 && svc->dedup != NULL &&
	    resend_check(&c, caller, &d, alloc, alloc_arg, &st) == DEDUP_REPLAY)
		return st;
	in = call_input(&d, a, oc);
	if (in == NULL)
		goto reply;
	out = arena_alloc(a, d.method->desc->output->sizeof_message);
	if (out == NULL) {
		outcome_set(oc, ST_RESOURCE_EXHAUSTED, REASON_NO_MEMORY, "out of memory");
		goto reply;
	}
	protobuf_c_message_init(d.method->desc->output, out);
	if (d.method->binding->fn(&rq, in, out) == ST_OK)
		c.out = out;
	if (info->park != NULL) {
		struct call *pc = service_park_ctx(info);

		static_assert(sizeof(*pc) <= SERVICE_PARK_CTX, "SERVICE_PARK_CTX is too small");
		*pc = c;
		if (!service_park_arm(info, call_reply_parked, pc))
			return ST_OK;
	}
reply:
	return call_reply(&c);
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
	return front_door(svc, caller, frame, len, a, alloc, alloc_arg, info);
}

/*
 * handlers.h: the semantics of every operation (SPEC sections 1 and 2), as pure functions
 * of (request message, stores, caller) -> (reply message, outcome). The binary rpcs and the
 * SQL statements both end here: there is one implementation of the rules.
 *
 * What they do not do: no I/O of their own (the stores do theirs), no packing, no logging.
 *
 * Thread safety: handlers may run on many threads at once, each with its own request.
 */
#ifndef SECRETD_SERVER_HANDLERS_H
#define SECRETD_SERVER_HANDLERS_H

#include <protobuf-c/protobuf-c.h>

#include "service.h"
#include "store.h"

/* Everything one call needs. All memory a handler allocates comes from arena. */
struct request {
	struct service *svc;
	struct caller *caller;
	struct arena *arena;
	struct call_info *info; /* outcome, name and storage for the log; never NULL */
};

/* Each handler is a handler_fn (dispatch.h), bound to its rpc in dispatch.c. */
enum status handle_create(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out);
enum status handle_drop(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out);
enum status handle_list(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out);
enum status handle_get(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out);
enum status handle_resolve(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out);
enum status handle_execute(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out);
enum status handle_rekey(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out);
enum status handle_health(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out);

/* The rest of a handler once its store write is over: sets the outcome (and the reply
 * message) from the store's answer and returns the status. arg is the handler's (arena
 * memory, since it may run after the handler returned). */
typedef enum status (*write_finish_fn)(void *arg, store_status st, bool created);

/*
 * Make the one store write of a call (service.c). When the call may be parked (the server
 * called service_handle_async) and the store writes asynchronously (sqlcipher), the write
 * is queued, rq->info->park is set and ST_OK is returned at once: the handler returns
 * that, and finish runs later, before the reply is made (see service_park_arm). Otherwise
 * the write is made now and finish's status is returned. s is taken; name is borrowed
 * (arena memory).
 */
enum status request_put(struct request *rq, struct store *st, struct store_secret *s,
    enum store_conflict mode, write_finish_fn finish, void *arg);
enum status request_remove(
    struct request *rq, struct store *st, const char *name, write_finish_fn finish, void *arg);

/*
 * After a handler returned with info->park set: reply(ctx) is to make the reply frame once
 * the write is over. Returns true when it is over already (the handler's finish has run
 * now; the caller makes the reply itself and reply is not called), false when the call
 * is parked: later, on the store's thread, finish runs, then reply(ctx), then the
 * server's done callback. ctx must be arena memory. Used by service.c.
 */
/* Room, in bytes, for reply's ctx inside the park (service_park_ctx). */
#define SERVICE_PARK_CTX 256

/* The ctx memory of the park of info (set: a handler returned with info->park), for
 * service_park_arm: SERVICE_PARK_CTX bytes aligned for any type, valid as long as the
 * call's arena. */
void *service_park_ctx(struct call_info *info);

bool service_park_arm(struct call_info *info, void (*reply)(void *ctx), void *ctx);

#endif

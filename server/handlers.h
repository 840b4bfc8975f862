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

/* Everything one call needs. All memory a handler allocates comes from arena. */
struct request {
	struct service *svc;
	struct caller *caller;
	struct arena *arena;
	struct call_info *info; /* outcome, name and storage for the log; never NULL */
};

/*
 * A handler reads in (an unpacked message of the method's input type, borrowed) and fills
 * out (an initialised message of the method's output type, whose pointers it sets to arena
 * memory). It returns the status it also stores in rq->info->outcome.
 */
typedef enum status (*handler_fn)(
    struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out);

enum status handle_create(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out);
enum status handle_drop(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out);
enum status handle_list(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out);
enum status handle_get(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out);
enum status handle_resolve(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out);
enum status handle_execute(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out);
enum status handle_rekey(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out);
enum status handle_health(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out);

#endif

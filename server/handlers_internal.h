/*
 * handlers_internal.h: what the handlers (handlers_write.c, handlers_read.c) share, from
 * handlers.c. Each helper that fails sets rq->info->outcome and returns its status.
 * Private to those three files.
 */
#ifndef SECRETD_SERVER_HANDLERS_INTERNAL_H
#define SECRETD_SERVER_HANDLERS_INTERNAL_H

#include "handlers.h"
#include "pb.h"
#include "types.h"

/* A lowercased (ASCII letters only) arena copy of s[0..n), or NULL. */
char *handler_lower_dup(struct arena *a, const char *s, size_t n);

/* Text safe to quote in a message: s itself when it is short printable UTF-8, else
 * "(unprintable)". */
const char *handler_quotable(const char *s);

/* RESOURCE_EXHAUSTED / NO_MEMORY. */
enum status handler_no_memory(struct request *rq);

/* Success: ST_OK, no reason, message "OK". */
enum status handler_ok(struct request *rq);

/* ST_OK when the caller holds at least role need; else UNAUTHENTICATED (no role) or
 * PERMISSION_DENIED, the message naming what (a static description of the call). */
enum status handler_require_role(struct request *rq, enum role need, const char *what);

/* Write the audit trail's attempt line before changing state; a trail that cannot be
 * written refuses the call (UNAVAILABLE / AUDIT: fail closed). */
enum status handler_audit_attempt(struct request *rq);

/* Translate a store status for an operation on storage (named in the message). */
enum status handler_store_failure(struct request *rq, store_status sst, const char *storage);

/* Normalise a secret name into an arena copy (*outp): ASCII letters lowercased, at most
 * max_name bytes, valid UTF-8, no control characters, not empty. */
enum status handler_name_normalise(struct request *rq, const char *name, char **outp);

/* The store of a storage: the persistent one or the temporary one. */
struct store *handler_store_for(struct request *rq, bool persistent);

/* "memory", or the persistent backend's name ("sqlcipher", or "etcd" on a cluster node). */
const char *handler_storage_name(const struct request *rq, bool persistent);

/* For replies: this node's name for a temporary secret on a cluster node, else "". */
char *handler_node_of(const struct request *rq, bool persistent);

/* The type definition of a TYPE (any case) into *tdp; INVALID_ARGUMENT when none is
 * given (MISSING_TYPE) or it is unknown (UNKNOWN_TYPE). */
enum status handler_validate_type(
    struct request *rq, const char *type, const struct type_def **tdp);

/* Which storages a request's storage value allows; INVALID_ARGUMENT for an unknown one. */
enum status handler_storages_allowed(struct request *rq, int storage, bool *memp, bool *persp);

/* FAILED_PRECONDITION / AMBIGUOUS: name is in both storages and the request did not say
 * which. */
enum status handler_ambiguous(struct request *rq, const char *name);

#endif

/*
 * dedup.h: answer a resent request with its first reply.
 *
 * nng's REQ socket resends a request when the pipe breaks or after its resend time, so a
 * Create, Drop or Rekey can arrive twice. A client puts a random request_id in the
 * envelope; for the methods that can change state (dispatch.c: remembered_for_resend) the
 * server remembers the reply of each call that did for a while (by id and a
 * fingerprint of the method and body), and a second arrival with the same id and
 * fingerprint gets the stored reply instead of running again. If the first is still
 * running, the second waits for it. A different fingerprint under the same id is a new
 * request, never someone else's answer. Replies of state-changing calls carry names and
 * statuses only, never values.
 *
 * Thread safety: all functions may be called from many threads at once.
 */
#ifndef SECRETD_SERVER_DEDUP_H
#define SECRETD_SERVER_DEDUP_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

struct dedup;

/* Remember up to capacity replies for ttl_ms each. Caller frees *dp with dedup_free. */
enum status dedup_open(size_t capacity, uint32_t ttl_ms, struct dedup **dp);

/* Wipe and free everything. NULL-safe. */
void dedup_free(struct dedup *d);

enum dedup_result {
	DEDUP_NEW,    /* first arrival: run it, then call dedup_finish */
	DEDUP_REPLAY, /* seen before: *replyp holds the first reply (caller frees with free) */
	DEDUP_OFF,    /* not tracked (table full, id 0, or out of memory): just run it */
};

/* A 64-bit fingerprint of a request's method and body. */
uint64_t dedup_fingerprint(const char *method, const uint8_t *body, size_t len);

/* Look up (id, fp); see enum dedup_result. */
enum dedup_result dedup_begin(
    struct dedup *d, uint64_t id, uint64_t fp, uint8_t **replyp, size_t *lenp);

/* Record the reply (copied) of a DEDUP_NEW request, or forget it when reply is NULL (a
 * call that changed nothing need not be remembered). Wakes any waiting duplicate. */
void dedup_finish(struct dedup *d, uint64_t id, uint64_t fp, const uint8_t *reply, size_t len);

#endif

/*
 * notify.h: the server's epoch and revision, and the notify socket (SPEC 9) that tells
 * caching clients which of their entries went stale.
 *
 * Epoch and revision. The epoch is 64 random bits drawn at each start: a client that sees a
 * new one knows every temporary secret and every revision it held is gone. The revision
 * (rev) starts at 0 and is raised by exactly 1 for each change a store makes visible (a
 * put that changed something, a remove; temporary and persistent alike), from the store's
 * on_change observer, after the change is durable and visible to readers. Every binary
 * reply carries (epoch, rev): for a call that changed nothing, rev was read before the
 * call looked at a store, so what it returned already holds every change up to rev; for a
 * call that changed state, rev was read after its change, so it is at least the change's.
 *
 * The notify socket is an nng pub0 socket (`--notify-listen URL`; by default, for each ipc
 * listener PATH.sock, ipc://PATH.notify.sock next to it; `none` turns it off). It listens
 * under the same rules as the main socket (ipc 0600, or 0660 with --socket-group, in a
 * private directory; tcp only with tokens, and TLS unless --insecure, with the same
 * certificate). It sends, little-endian, no other kind of message:
 *
 *   bytes 0-3   "SDN" 0x01 (magic, format version 1)
 *   byte  4     kind: 1 heartbeat, 2 invalidation; bytes 5-7 zero
 *   bytes 8-15  epoch
 *   bytes 16-23 rev: the server's revision (a heartbeat), or the revision this change
 *               raised it to (an invalidation: consecutive, one per change)
 *   bytes 24-31 the server's CLOCK_MONOTONIC in microseconds when the message was made
 *               (the Subscribe reply carries the same clock: a subscriber measures how old
 *               a message is from these, not from when its own queue handed it over)
 *   bytes 32-39 invalidation: SipHash-2-4(name_key, stored name) of the changed secret;
 *               heartbeat: zero
 *
 * An invalidation is sent after the change is durable and visible; a heartbeat at least
 * every NOTIFY_HEARTBEAT_MS. Both are sent under one lock with the revision they carry, so
 * they leave in revision order; pub0 may still drop any of them (a full queue, a late
 * subscriber), so a client must treat a gap in rev, or a heartbeat whose rev is past the
 * last invalidation it applied, as "everything may be stale".
 *
 * What a subscriber learns. Never a value, a type or a name: only the epoch, how many
 * changes were made and when, and which changes (within one epoch) touched the same secret.
 * name_key is 16 random bytes drawn with the epoch and given only by the Subscribe rpc,
 * i.e. to a caller that authenticated as reader or admin: exactly the callers that may List
 * every name anyway. A subscriber without the key cannot test a guessed name against a
 * digest. (Reaching the notify socket at all takes what reaching the main socket takes: the
 * same file mode, or on tcp the same TLS; pub0 itself cannot check a token.)
 *
 * Thread safety: notify_changed, notify_rev and notify_epoch may be called from any thread
 * once notify_open returned; notify_listen and notify_start from the main thread during
 * start-up; notify_close once, after the workers and stores are done with it.
 */
#ifndef SECRETD_SERVER_NOTIFY_H
#define SECRETD_SERVER_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "status.h"

struct notify;
struct request;
struct server;
struct logger;

/* Heartbeat period: four per default staleness bound (1 s), so that one late or dropped
 * heartbeat does not make every caching client flush. */
#define NOTIFY_HEARTBEAT_MS 250
#define NOTIFY_KEY_LEN 16
#define NOTIFY_MSG_HEARTBEAT 1
#define NOTIFY_MSG_INVALIDATION 2
#define NOTIFY_MSG_LEN 40

/* Draw a new epoch and name key; rev 0; no socket yet. log is borrowed for the notify's
 * life. ST_OK with *np (free with notify_close), or ST_INTERNAL (no randomness, no memory). */
enum status notify_open(struct logger *log, struct notify **np);

/* Listen on url (borrowed) for subscribers, opening the pub0 socket on first use, under
 * the main listener's rules (listen.h). false after logging why. */
bool notify_listen(struct notify *n, struct server *srv, const char *url);

/* Write into buf the default notify URL next to the ipc URL main_url: PATH.sock becomes
 * PATH.notify.sock, any other PATH becomes PATH.notify. false when main_url is not ipc://
 * or the result does not fit. */
bool notify_default_url(const char *main_url, char *buf, size_t len);

/* Start the heartbeat thread (only when a socket listens). false after logging why. */
bool notify_start(struct notify *n);

/* Stop the heartbeat, close the socket, wipe the key, free. NULL-safe. */
void notify_close(struct notify *n);

/* store_config.on_change: raise rev and publish an invalidation for name (borrowed).
 * arg is the struct notify. Never fails; a dropped message is what revisions are for. */
void notify_changed(void *arg, const char *name);

/* The server's monotonic clock in microseconds (the time carried by notify messages). */
uint64_t notify_now_us(void);

/* The current epoch and revision; 0 for a NULL notify (a service without one). */
uint64_t notify_epoch(const struct notify *n);
uint64_t notify_rev(const struct notify *n);

/* The Subscribe rpc's handler (handlers.h): epoch, rev and the name key, for any
 * authenticated caller; UNIMPLEMENTED when the service has no notify. */
enum status handle_subscribe(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out);

#endif

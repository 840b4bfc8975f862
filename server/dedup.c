/*
 * dedup.c: a small open-addressing table of recent replies. See dedup.h.
 */
#include "dedup.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

/* How far a key may sit from its home slot. */
#define DEDUP_PROBE 16
/* How long a duplicate waits for the first copy to finish. */
#define DEDUP_WAIT_MS 30000

enum slot_state { SLOT_EMPTY = 0, SLOT_BUSY, SLOT_DONE };

struct slot {
	enum slot_state state;
	uint64_t id;
	uint64_t fp;
	uint64_t expires_ms;
	uint8_t *reply;
	size_t len;
};

struct dedup {
	pthread_mutex_t lock;
	pthread_cond_t done;
	struct slot *slots;
	size_t n; /* a power of two */
	uint32_t ttl_ms;
};

enum status
dedup_open(size_t capacity, uint32_t ttl_ms, struct dedup **dp)
{
	struct dedup *d = calloc(1, sizeof(*d));
	pthread_condattr_t ca;
	size_t n = 64;

	if (d == NULL)
		return ST_RESOURCE_EXHAUSTED;
	while (n < capacity && n < ((size_t)1 << 24))
		n <<= 1;
	d->slots = calloc(n, sizeof(*d->slots));
	if (d->slots == NULL || pthread_mutex_init(&d->lock, NULL) != 0) {
		free(d->slots);
		free(d);
		return ST_RESOURCE_EXHAUSTED;
	}
	/* Waits use CLOCK_MONOTONIC so a clock change cannot stretch them. */
	(void)pthread_condattr_init(&ca);
	(void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&d->done, &ca) != 0) {
		(void)pthread_condattr_destroy(&ca);
		(void)pthread_mutex_destroy(&d->lock);
		free(d->slots);
		free(d);
		return ST_RESOURCE_EXHAUSTED;
	}
	(void)pthread_condattr_destroy(&ca);
	d->n = n;
	d->ttl_ms = ttl_ms;
	*dp = d;
	return ST_OK;
}

static void
slot_clear(struct slot *s)
{
	if (s->reply != NULL) {
		explicit_bzero(s->reply, s->len);
		free(s->reply);
	}
	memset(s, 0, sizeof(*s));
}

void
dedup_free(struct dedup *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->n; i++)
		slot_clear(&d->slots[i]);
	free(d->slots);
	(void)pthread_cond_destroy(&d->done);
	(void)pthread_mutex_destroy(&d->lock);
	free(d);
}

uint64_t
dedup_fingerprint(const char *method, const uint8_t *body, size_t len)
{
	/* FNV-1a: not a defence against a forger (ids are the caller's own), only a guard
	 * against an id reused for a different request. */
	uint64_t h = 0xcbf29ce484222325u;

	for (const char *p = method; *p != '\0'; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3u;
	h = (h ^ 0xff) * 0x100000001b3u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ body[i]) * 0x100000001b3u;
	return h;
}

static size_t
home(const struct dedup *d, uint64_t id)
{
	uint64_t x = id * 0x9e3779b97f4a7c15u;

	return (size_t)(x >> 20) & (d->n - 1);
}

/* The slot holding (id, fp), or NULL. Expired DONE slots are cleared on the way. */
static struct slot *
find(struct dedup *d, uint64_t id, uint64_t fp, uint64_t now)
{
	for (size_t k = 0; k < DEDUP_PROBE; k++) {
		struct slot *s = &d->slots[(home(d, id) + k) & (d->n - 1)];

		if (s->state == SLOT_DONE && s->expires_ms <= now)
			slot_clear(s);
		if (s->state != SLOT_EMPTY && s->id == id && s->fp == fp)
			return s;
	}
	return NULL;
}

enum dedup_result
dedup_begin(struct dedup *d, uint64_t id, uint64_t fp, uint8_t **replyp, size_t *lenp)
{
	enum dedup_result res = DEDUP_OFF;
	uint64_t now = sd_now_ms();
	struct slot *s;

	if (d == NULL || id == 0)
		return DEDUP_OFF;
	(void)pthread_mutex_lock(&d->lock);
	s = find(d, id, fp, now);
	if (s != NULL) {
		struct timespec until;

		(void)clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += DEDUP_WAIT_MS / 1000;
		while (s->state == SLOT_BUSY && s->id == id && s->fp == fp) {
			if (pthread_cond_timedwait(&d->done, &d->lock, &until) != 0)
				break;
		}
		if (s->state == SLOT_DONE && s->id == id && s->fp == fp) {
			*replyp = malloc(s->len > 0 ? s->len : 1);
			if (*replyp != NULL) {
				memcpy(*replyp, s->reply, s->len);
				*lenp = s->len;
				res = DEDUP_REPLAY;
			}
		}
		/* Still busy after the wait, or forgotten: run it again rather than hang. */
		goto out;
	}
	for (size_t k = 0; k < DEDUP_PROBE; k++) {
		struct slot *e = &d->slots[(home(d, id) + k) & (d->n - 1)];

		if (e->state == SLOT_EMPTY) {
			e->state = SLOT_BUSY;
			e->id = id;
			e->fp = fp;
			res = DEDUP_NEW;
			break;
		}
	}
out:
	(void)pthread_mutex_unlock(&d->lock);
	return res;
}

void
dedup_finish(struct dedup *d, uint64_t id, uint64_t fp, const uint8_t *reply, size_t len)
{
	struct slot *s;

	if (d == NULL || id == 0)
		return;
	(void)pthread_mutex_lock(&d->lock);
	s = find(d, id, fp, sd_now_ms());
	if (s != NULL && s->state == SLOT_BUSY) {
		uint8_t *copy = reply != NULL ? malloc(len > 0 ? len : 1) : NULL;

		if (copy == NULL) {
			slot_clear(s);
		} else {
			memcpy(copy, reply, len);
			s->reply = copy;
			s->len = len;
			s->state = SLOT_DONE;
			s->expires_ms = sd_now_ms() + d->ttl_ms;
		}
	}
	(void)pthread_cond_broadcast(&d->done);
	(void)pthread_mutex_unlock(&d->lock);
}

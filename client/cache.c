/*
 * cache.c: libsecretd's cache of Get and Resolve results: the table, what a notify message
 * does to it, and the calls' lookups and inserts. The rules are in cache.h; the message
 * format in server/notify.h; the subscriber that feeds it in cache_sub.c.
 *
 * What it does not do: it never writes to disk, never logs, and never serves an entry
 * while it cannot prove freshness (except stale-if-error, flagged on the result).
 *
 * Thread safety: c->mu guards everything but the subscriber socket, which only the
 * subscriber thread reads, and the connected pipe's id (atomic). No nng or rpc call is
 * made under c->mu.
 */
#include "cache_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "path.h"
#include "siphash.h"

uint64_t
cache_now_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t
le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Build the key of (kind, a, b) into buf: kind, then for CACHE_GET the storage and the
 * name with ASCII letters lowercased as the server stores it, for CACHE_RESOLVE the type
 * lowercased, a NUL and the path; *lenp gets its length. false when it does not fit (such
 * a call is simply not cached). */
static bool
make_key(enum cache_kind kind, const char *a, const char *b, char buf[KEY_MAX], size_t *lenp)
{
	size_t la = strlen(a), lb = strlen(b), n = 0;

	if (la + lb + 3 > KEY_MAX)
		return false;
	buf[n++] = (char)kind;
	if (kind == CACHE_GET) {
		buf[n++] = b[0]; /* storage: 0, 'm' or 's' */
		for (size_t i = 0; i < la; i++)
			buf[n++] = (char)(a[i] >= 'A' && a[i] <= 'Z' ? a[i] - 'A' + 'a' : a[i]);
	} else {
		for (size_t i = 0; i < la; i++)
			buf[n++] = (char)(a[i] >= 'A' && a[i] <= 'Z' ? a[i] - 'A' + 'a' : a[i]);
		buf[n++] = '\0';
		memcpy(buf + n, b, lb);
		n += lb;
	}
	*lenp = n;
	return true;
}

/* The hash of a key: for a Get, the digest of the name alone (what invalidations carry:
 * the same SipHash-2-4 the server puts on the notify socket). */
static uint64_t
key_hash(const struct client_cache *c, const char *key, size_t len)
{
	if (key[0] == CACHE_GET)
		return sd_siphash24_key(c->name_key, key + 2, len - 2);
	return sd_siphash24_key(c->name_key, key, len);
}

static void
entry_free(struct entry *e)
{
	if (e == NULL)
		return;
	secretd_secret_free(e->secret);
	if (e->key != NULL) {
		explicit_bzero(e->key, e->klen);
		free(e->key);
	}
	free(e);
}

/* Unlink e from its bucket and the age list and free it (wiped). Under c->mu. */
static void
entry_remove(struct client_cache *c, struct entry *e)
{
	struct entry **pp = &c->buckets[e->hash & (c->n_buckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		c->oldest = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		c->newest = e->prev;
	c->count--;
	if (e->kind == CACHE_RESOLVE)
		c->n_resolve--;
	entry_free(e);
}

static struct entry *
entry_find(struct client_cache *c, uint64_t hash, const char *key, size_t len)
{
	for (struct entry *e = c->buckets[hash & (c->n_buckets - 1)]; e != NULL; e = e->hnext)
		if (e->hash == hash && e->klen == len && memcmp(e->key, key, len) == 0)
			return e;
	return NULL;
}

/* Everything goes, suspect entries too: a new epoch, or close. Under c->mu. */
void
cache_wipe_all(struct client_cache *c)
{
	while (c->oldest != NULL)
		entry_remove(c, c->oldest);
	c->synced = false;
}

/* Freshness can no longer be proven: stop serving until the next sync; keep entries only
 * for stale-if-error. Under c->mu. */
void
cache_flush(struct client_cache *c)
{
	struct entry *e = c->oldest;

	c->synced = false;
	while (e != NULL) {
		struct entry *next = e->next;

		if (c->max_stale_us == 0) {
			entry_remove(c, e);
		} else if (!e->suspect) {
			e->suspect = true;
			e->verified_us = c->fresh_us;
		}
		e = next;
	}
}

/* Whether entries may be served now. Under c->mu. */
static bool
servable(const struct client_cache *c, uint64_t now)
{
	if (!c->synced || !c->heard || now > c->fresh_us + c->bound_us)
		return false;
	return c->barrier_epoch != c->epoch || c->applied >= c->barrier;
}

/* Apply one notify message. Under c->mu. */
void
cache_apply_message(struct client_cache *c, const uint8_t *p, size_t len)
{
	uint64_t epoch, rev, server_us, digest, t = 0;
	int kind;

	if (len != NOTIFY_MSG_LEN || memcmp(p, "SDN\x01", 4) != 0 || !c->synced)
		return;
	kind = p[4];
	epoch = le64(p + 8);
	rev = le64(p + 16);
	server_us = le64(p + 24);
	digest = le64(p + 32);
	if (epoch != c->epoch) {
		cache_wipe_all(c); /* a new server process: its temporaries and revisions are new */
		c->epoch = 0;
		return;
	}
	/* When the server made this message, in our clock: at the earliest the Subscribe
	 * call's send time plus the server time elapsed since its reply. */
	if (server_us >= c->sync_server_us)
		t = c->sync_client_us + (server_us - c->sync_server_us);
	if (kind == NOTIFY_INVALIDATION) {
		if (rev <= c->applied)
			return; /* before the sync: already in its state */
		if (rev != c->applied + 1) {
			cache_flush(c); /* a gap: some invalidation was dropped */
			return;
		}
		c->applied = rev;
		c->ring_rev[rev % RING] = rev;
		c->ring_digest[rev % RING] = digest;
		for (struct entry *e = c->buckets[digest & (c->n_buckets - 1)], *next; e != NULL;
		     e = next) {
			next = e->hnext;
			if (e->kind == CACHE_GET && e->hash == digest)
				entry_remove(c, e);
		}
		for (struct entry *e = c->oldest, *next; e != NULL && c->n_resolve > 0; e = next) {
			next = e->next;
			if (e->kind == CACHE_RESOLVE)
				entry_remove(c, e);
		}
	} else if (kind == NOTIFY_HEARTBEAT) {
		if (rev > c->applied) {
			cache_flush(c); /* invalidations up to rev never arrived */
			return;
		}
		if (rev < c->applied)
			return; /* made before an invalidation already applied */
	} else {
		return;
	}
	if (server_us >= c->sync_server_us)
		c->heard = true;
	if (t > c->fresh_us)
		c->fresh_us = t;
}

secretd_status
client_cache_open(
    secretd_client *client, const secretd_options *o, struct client_cache **cp, secretd_error *err)
{
	struct client_cache *c = NULL;
	char url[SD_PATH_SUFFIX_BUF];
	secretd_status st;

	*cp = NULL;
	if (o == NULL || !o->cache)
		return SECRETD_OK;
	if (o->cache_bound_ms < 0 || o->cache_max_age_ms < 0 || o->cache_max_stale_ms < 0)
		return client_fail(err, SECRETD_INVALID_ARGUMENT, "negative cache setting");
	if (o->notify_url != NULL) {
		client_copy_str(url, sizeof(url), o->notify_url);
	} else if (strncmp(client->url, "ipc://", 6) == 0) {
		size_t n = strlen(client->url);

		if (n > 5 && strcmp(client->url + n - 5, ".sock") == 0)
			(void)snprintf(
			    url, sizeof(url), "%.*s.notify.sock", (int)(n - 5), client->url);
		else
			(void)snprintf(url, sizeof(url), "%s.notify", client->url);
	} else {
		return SECRETD_OK; /* no notify socket known: every call goes to the server */
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL || pthread_mutex_init(&c->mu, NULL) != 0) {
		free(c);
		return client_fail(err, SECRETD_RESOURCE_EXHAUSTED, "out of memory");
	}
	c->client = client;
	c->bound_us = (uint64_t)(o->cache_bound_ms > 0 ? o->cache_bound_ms : 1000) * 1000u;
	c->max_age_us = (uint64_t)(o->cache_max_age_ms > 0 ? o->cache_max_age_ms : 60000) * 1000u;
	c->max_stale_us = (uint64_t)o->cache_max_stale_ms * 1000u;
	c->max_entries = o->cache_max_entries > 0 ? o->cache_max_entries : 4096;
	c->n_buckets = 64;
	while (c->n_buckets < c->max_entries && c->n_buckets < ((size_t)1 << 24))
		c->n_buckets *= 2;
	atomic_init(&c->sub_pipe, 0);
	atomic_init(&c->stop, false);
	c->buckets = calloc(c->n_buckets, sizeof(*c->buckets));
	c->notify_url = strdup(url);
	if (c->buckets == NULL || c->notify_url == NULL) {
		st = client_fail(err, SECRETD_RESOURCE_EXHAUSTED, "out of memory");
		goto fail;
	}
	if ((st = cache_sub_open(c, err)) != SECRETD_OK)
		goto fail;
	if (!cache_sub_start(c)) {
		st = client_fail(err, SECRETD_INTERNAL, "cannot start the cache's subscriber");
		goto fail;
	}
	*cp = c;
	return SECRETD_OK;
fail:
	client_cache_close(c);
	return st;
}

void
client_cache_close(struct client_cache *c)
{
	if (c == NULL)
		return;
	cache_sub_stop(c);
	cache_sub_close(c);
	if (c->buckets != NULL) {
		(void)pthread_mutex_lock(&c->mu);
		cache_wipe_all(c);
		(void)pthread_mutex_unlock(&c->mu);
	}
	free(c->buckets);
	free(c->notify_url);
	(void)pthread_mutex_destroy(&c->mu);
	explicit_bzero(c, sizeof(*c));
	free(c);
}

/* Copy out the entry for a key when allowed: fresh (stale false) or stale-if-error. */
static bool
lookup(struct client_cache *c, enum cache_kind kind, const char *a, const char *b, bool stale,
    secretd_secret **outp)
{
	char key[KEY_MAX];
	size_t len;
	uint64_t now = cache_now_us();
	struct entry *e;
	bool hit = false;

	if (c == NULL || !make_key(kind, a, b, key, &len))
		return false;
	(void)pthread_mutex_lock(&c->mu);
	if (!c->have_key || (!stale && !servable(c, now)))
		goto done;
	e = entry_find(c, key_hash(c, key, len), key, len);
	if (e == NULL || now > e->inserted_us + c->max_age_us)
		goto done;
	if (stale) {
		uint64_t verified = e->suspect ? e->verified_us : c->fresh_us;

		if (c->max_stale_us == 0 || now > verified + c->max_stale_us)
			goto done;
	} else if (e->suspect) {
		goto done;
	}
	hit = client_secret_dup(e->secret, outp) == SECRETD_OK;
	if (hit && stale)
		(*outp)->stale = true;
done:
	(void)pthread_mutex_unlock(&c->mu);
	return hit;
}

bool
client_cache_lookup(struct client_cache *c, enum cache_kind kind, const char *a, const char *b,
    secretd_secret **outp)
{
	return lookup(c, kind, a, b, false, outp);
}

bool
client_cache_lookup_stale(struct client_cache *c, enum cache_kind kind, const char *a,
    const char *b, secretd_secret **outp)
{
	return lookup(c, kind, a, b, true, outp);
}

/* Whether an invalidation newer than rev and touching hash (or any, for a Resolve) has been
 * applied, or the ring cannot tell. Under c->mu. */
static bool
overtaken(const struct client_cache *c, enum cache_kind kind, uint64_t hash, uint64_t rev)
{
	if (rev >= c->applied)
		return false;
	if (rev < c->ring_base || c->applied - rev > RING || kind == CACHE_RESOLVE)
		return true;
	for (uint64_t r = rev + 1; r <= c->applied; r++)
		if (c->ring_rev[r % RING] != r || c->ring_digest[r % RING] == hash)
			return true;
	return false;
}

void
client_cache_insert(struct client_cache *c, enum cache_kind kind, const char *a, const char *b,
    uint64_t epoch, uint64_t rev, const secretd_secret *s)
{
	char key[KEY_MAX];
	size_t len;
	struct entry *e = NULL;
	struct entry *old;

	if (c == NULL || s == NULL || !make_key(kind, a, b, key, &len))
		return;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return;
	e->kind = (char)kind;
	e->klen = len;
	e->key = malloc(len);
	if (e->key == NULL || client_secret_dup(s, &e->secret) != SECRETD_OK)
		goto drop;
	memcpy(e->key, key, len);
	(void)pthread_mutex_lock(&c->mu);
	if (!c->synced || epoch != c->epoch) {
		(void)pthread_mutex_unlock(&c->mu);
		goto drop;
	}
	e->hash = key_hash(c, key, len);
	if (overtaken(c, kind, e->hash, rev)) {
		(void)pthread_mutex_unlock(&c->mu);
		goto drop;
	}
	old = entry_find(c, e->hash, key, len);
	if (old != NULL)
		entry_remove(c, old);
	if (c->count >= c->max_entries && c->oldest != NULL)
		entry_remove(c, c->oldest);
	e->inserted_us = cache_now_us();
	e->hnext = c->buckets[e->hash & (c->n_buckets - 1)];
	c->buckets[e->hash & (c->n_buckets - 1)] = e;
	e->prev = c->newest;
	if (c->newest != NULL)
		c->newest->next = e;
	else
		c->oldest = e;
	c->newest = e;
	c->count++;
	if (kind == CACHE_RESOLVE)
		c->n_resolve++;
	(void)pthread_mutex_unlock(&c->mu);
	return;
drop:
	entry_free(e);
}

void
client_cache_reply(struct client_cache *c, uint64_t epoch, uint64_t rev, bool wrote)
{
	if (c == NULL || (epoch == 0 && !wrote))
		return;
	(void)pthread_mutex_lock(&c->mu);
	if (epoch == 0) {
		/* A write with no answer may still have happened: serve nothing until the
		 * cache has synced again, so that it is seen like an answered one. */
		cache_flush(c);
		(void)pthread_mutex_unlock(&c->mu);
		return;
	}
	if (c->epoch != 0 && epoch != c->epoch) {
		/* The server restarted: its temporaries are gone, so are ours, at once. */
		cache_wipe_all(c);
		c->epoch = 0;
	}
	if (wrote) {
		if (c->barrier_epoch != epoch)
			c->barrier = 0;
		c->barrier_epoch = epoch;
		if (rev > c->barrier)
			c->barrier = rev;
	}
	(void)pthread_mutex_unlock(&c->mu);
}

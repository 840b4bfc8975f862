/*
 * etcd.c: the "etcd" backend. Persistent secrets live in an etcd cluster that many secretd
 * share; each node keeps a full mirror in an embedded memory store and serves every read
 * from it.
 *
 * Layout under the prefix P (default "/secretd/"): P "s/" name holds one sealed secret
 * (seal.h; the associated data binds "s/" name); P "keycheck" holds a sealed marker that
 * proves, at open, that this node's key file is the cluster's. A node whose key does not
 * open the marker (or any secret) is refused at open, after reads only.
 *
 * Mirror: open lists the whole prefix (linearizable, paged at one revision) into the mirror,
 * then a watch thread follows the prefix from the next revision and applies every event,
 * raising the mirror's revision after each response. A watch cancelled for compaction, a
 * restart asked for by a waiter or by the health probe (below) makes it list again and
 * reconcile (put what changed, remove what is gone). A lost connection resumes the watch
 * from the mirror's revision on the next endpoint.
 *
 * Writes never touch the mirror: they are etcd transactions, and return once the watch has
 * applied their revision, so a node reads its own writes. Create (error / ignore) compares
 * create_revision == 0; replace puts; remove compares that the key exists. A compare that
 * fails reads the key back in the same transaction: a value carrying this write's tag is
 * our own earlier attempt (a retry after a lost answer, or a resend through another node),
 * answered as success, so no write is applied twice or reported as a conflict with itself.
 *
 * Health: a probe thread reads the prefix (linearizable) every PROBE_MS. Success means etcd
 * has quorum: writes are allowed. While it fails, writes are refused at once with
 * STORE_UNAVAILABLE without sending anything (reads go on from the mirror). A probe that
 * sees a newer change in the prefix than the mirror holds for longer than STALL_MS (a
 * watch stuck on a stopped member) restarts the watch.
 *
 * Rotation (rekey): the new key becomes the sealing key at once, the old one stays a key
 * values may be opened with, and every value is re-sealed under the new key by a
 * transaction that compares its mod_revision. The other nodes must hold the new key before
 * they can read what is re-sealed: the server allows this only offline (see README).
 *
 * Files: this one opens, closes, reads from the mirror and holds the key helpers; the
 * listing, the watch and the probe are in etcd_mirror.c, the writes in etcd_write.c.
 *
 * What it does not do: no leases but the drop markers' (etcd_write.c), no temporary
 * secrets (those stay in each node's memory store), no HTTP (etcd_http.c), no
 * cryptography (seal.c).
 *
 * Thread safety: any number of threads may call the ops at once. mu guards the revision,
 * the health fields and the seals; the mirror has its own lock.
 */
#include "etcd_internal.h"
#include "memory_internal.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "clock.h"

/* P + suffix + name as a base64 JSON string. */
json_t *
store_etcd_key_json(const struct store_etcd *e, const char *suffix, const char *name)
{
	size_t sl = strlen(suffix);
	size_t nl = name != NULL ? strlen(name) : 0;
	char *k = malloc(e->prefix_len + sl + nl + 1);
	json_t *j;

	if (k == NULL)
		return NULL;
	memcpy(k, e->prefix, e->prefix_len);
	memcpy(k + e->prefix_len, suffix, sl);
	if (nl > 0)
		memcpy(k + e->prefix_len + sl, name, nl);
	j = etcd_b64(k, e->prefix_len + sl + nl);
	free(k);
	return j;
}

/* The end of the range holding every key that starts with the prefix. */
json_t *
store_etcd_prefix_end_json(const struct store_etcd *e)
{
	char *k = malloc(e->prefix_len);
	json_t *j;

	if (k == NULL)
		return NULL;
	memcpy(k, e->prefix, e->prefix_len);
	k[e->prefix_len - 1]++; /* the prefix ends in '/', never 0xff */
	j = etcd_b64(k, e->prefix_len);
	free(k);
	return j;
}

/* The key of a kv relative to the prefix, NUL-terminated (caller frees); NULL when the
 * key is outside the prefix or malformed. */
char *
store_etcd_rel_key(const struct store_etcd *e, const json_t *kv)
{
	size_t len = 0;
	uint8_t *k = etcd_unb64(json_object_get(kv, "key"), &len);
	char *rel = NULL;

	if (k == NULL)
		return NULL;
	if (len >= e->prefix_len && memcmp(k, e->prefix, e->prefix_len) == 0 &&
	    memchr(k, 0, len) == NULL)
		rel = strdup((const char *)k + e->prefix_len);
	free(k);
	return rel;
}

/* Open a sealed value stored at rel (P-relative key) with whichever of our keys sealed it.
 * The secret's name is rel without "s/". */
store_status
store_etcd_open_value(
    struct store_etcd *e, const char *rel, const uint8_t *v, size_t len, struct store_secret **outp)
{
	uint8_t kid[STORE_SEAL_KID_LEN];
	struct store_seal use;
	store_status rc;

	*outp = NULL;
	if (!store_seal_peek(v, len, kid, NULL))
		return STORE_CORRUPT;
	(void)pthread_mutex_lock(&e->mu);
	if (memcmp(kid, e->seal.kid, sizeof(kid)) == 0)
		use = e->seal;
	else if (e->has_old && memcmp(kid, e->old_seal.kid, sizeof(kid)) == 0)
		use = e->old_seal;
	else
		memset(&use, 0, sizeof(use));
	(void)pthread_mutex_unlock(&e->mu);
	if (memcmp(kid, use.kid, sizeof(kid)) != 0)
		rc = STORE_BAD_KEY;
	else
		rc = store_seal_open(&use, rel, v, len, outp);
	store_seal_wipe(&use);
	if (rc == STORE_OK && strncmp(rel, SECRETS, 2) == 0) {
		/* The sealed name is "s/<name>"; the mirror's is <name>. */
		struct store_secret *s = NULL;

		rc = store_secret_new(rel + 2, (*outp)->type, (*outp)->scope, (*outp)->n_scope,
		    (*outp)->fields, (*outp)->n_fields, &s);
		store_secret_free(*outp);
		*outp = s;
	}
	return rc;
}

/* Seal s (named name in the mirror) for key P "s/" name. */
store_status
store_etcd_seal_value(
    struct store_etcd *e, const struct store_secret *s, uint64_t tag, uint8_t **outp, size_t *lenp)
{
	struct store_secret *named = NULL;
	struct store_seal use;
	char *rel = malloc(strlen(s->name) + 3);
	store_status rc = STORE_NO_MEMORY;

	if (rel == NULL)
		return rc;
	(void)sprintf(rel, SECRETS "%s", s->name);
	rc = store_secret_new(rel, s->type, s->scope, s->n_scope, s->fields, s->n_fields, &named);
	free(rel);
	if (rc != STORE_OK)
		return rc;
	(void)pthread_mutex_lock(&e->mu);
	use = e->seal;
	(void)pthread_mutex_unlock(&e->mu);
	rc = store_seal_secret(&use, named, tag, outp, lenp);
	store_seal_wipe(&use);
	store_secret_free(named);
	return rc;
}

/* --- open and close ------------------------------------------------------------------ */

static void
etcd_close(void *impl)
{
	struct store_etcd *e = impl;

	if (e == NULL)
		return;
	atomic_store(&e->stop, true);
	atomic_store(&e->wake, true);
	(void)pthread_mutex_lock(&e->mu);
	(void)pthread_cond_broadcast(&e->cv);
	(void)pthread_mutex_unlock(&e->mu);
	if (e->watch_started)
		(void)pthread_join(e->watch_thread, NULL);
	if (e->probe_started)
		(void)pthread_join(e->probe_thread, NULL);
	if (e->mem != NULL)
		store_memory_ops.close(e->mem);
	etcd_http_close(e->http);
	store_seal_wipe(&e->seal);
	store_seal_wipe(&e->old_seal);
	(void)pthread_cond_destroy(&e->cv);
	(void)pthread_mutex_destroy(&e->mu);
	free(e->prefix);
	free(e);
	curl_global_cleanup();
}

/* Create the key marker if the prefix has none (the first node of a cluster). */
static store_status
keycheck_create(struct store_etcd *e)
{
	struct etcd_http_result res;
	struct store_secret *marker = NULL;
	struct store_seal use;
	uint8_t *v = NULL;
	size_t vlen = 0;
	json_t *req = NULL;
	json_t *ans = NULL;
	store_status rc;

	rc = store_secret_new(KEYCHECK, "keycheck", NULL, 0, NULL, 0, &marker);
	if (rc != STORE_OK)
		return rc;
	(void)pthread_mutex_lock(&e->mu);
	use = e->seal;
	(void)pthread_mutex_unlock(&e->mu);
	rc = store_seal_secret(&use, marker, 0, &v, &vlen);
	store_seal_wipe(&use);
	store_secret_free(marker);
	if (rc != STORE_OK)
		return rc;
	req = json_pack("{s:[{s:s,s:o,s:s}],s:[{s:{s:o,s:o}}]}", "compare", "target", "CREATE",
	    "key", store_etcd_key_json(e, KEYCHECK, NULL), "create_revision", "0", "success",
	    "request_put", "key", store_etcd_key_json(e, KEYCHECK, NULL), "value",
	    etcd_b64(v, vlen));
	free(v);
	if (req == NULL)
		return STORE_NO_MEMORY;
	rc = etcd_http_call(e->http, "/v3/kv/txn", req, e->timeout_ms, &ans, &res);
	json_decref(req);
	json_decref(ans);
	return rc == STORE_OK ? STORE_OK : STORE_UNAVAILABLE;
}

static store_status
etcd_open(const struct store_config *cfg, void **implp)
{
	const struct store_etcd_config *ec = cfg->etcd;
	struct store_etcd *e = NULL;
	struct etcd_listing l = {0};
	uint64_t foreign = 0;
	const char *prefix;
	store_status rc = STORE_INVALID;

	*implp = NULL;
	if (ec == NULL || cfg->key == NULL || cfg->key_len != STORE_KEY_LEN)
		return STORE_INVALID;
	prefix = ec->prefix != NULL && ec->prefix[0] != '\0' ? ec->prefix : "/secretd/";
	if (prefix[strlen(prefix) - 1] != '/')
		return STORE_INVALID;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return STORE_IO;
	e = calloc(1, sizeof(*e));
	if (e == NULL || pthread_mutex_init(&e->mu, NULL) != 0) {
		free(e);
		curl_global_cleanup();
		return STORE_NO_MEMORY;
	}
	{
		pthread_condattr_t ca;

		(void)pthread_condattr_init(&ca);
		(void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		(void)pthread_cond_init(&e->cv, &ca);
		(void)pthread_condattr_destroy(&ca);
	}
	e->max_secrets = cfg->max_secrets == 0 ? ETCD_DEFAULT_MAX : cfg->max_secrets;
	e->timeout_ms = ec->timeout_ms > 0 ? ec->timeout_ms : ETCD_DEFAULT_TIMEOUT_MS;
	e->on_change = cfg->on_change;
	e->on_change_arg = cfg->on_change_arg;
	e->prefix = strdup(prefix);
	e->prefix_len = strlen(prefix);
	rc = STORE_NO_MEMORY;
	if (e->prefix == NULL)
		goto fail;
	rc = store_seal_init(&e->seal, cfg->key, cfg->key_len);
	if (rc == STORE_OK && ec->old_key != NULL) {
		rc = store_seal_init(&e->old_seal, ec->old_key, STORE_KEY_LEN);
		e->has_old = rc == STORE_OK;
	}
	if (rc != STORE_OK)
		goto fail;
	rc = etcd_http_open(ec, &e->http);
	if (rc != STORE_OK)
		goto fail;
	rc = store_memory_open_unlimited(&e->mem);
	if (rc != STORE_OK)
		goto fail;
	/* Reads only until the key is proved: a wrong key file leaves etcd untouched. */
	rc = store_etcd_list_all(e, true, &l, &foreign);
	if (rc != STORE_OK)
		goto fail;
	if (!l.keycheck) {
		/* Either a new cluster, or the marker is there under a key that is not ours
		 * (list_all refused that already). */
		rc = keycheck_create(e);
		if (rc != STORE_OK)
			goto fail;
	}
	rc = store_etcd_reconcile(e, &l, false);
	if (rc != STORE_OK)
		goto fail;
	e->serving = true;
	e->writable = true;
	rc = STORE_IO;
	if (pthread_create(&e->watch_thread, NULL, store_etcd_watch_main, e) != 0)
		goto fail;
	e->watch_started = true;
	if (pthread_create(&e->probe_thread, NULL, store_etcd_probe_main, e) != 0)
		goto fail;
	e->probe_started = true;
	*implp = e;
	return STORE_OK;
fail:
	if (ec->error != NULL && ec->error_len > 0 && e != NULL && e->http != NULL)
		etcd_http_last_error(e->http, ec->error, ec->error_len);
	store_etcd_listing_free(&l);
	etcd_close(e);
	return rc;
}

/* --- reads: the mirror --------------------------------------------------------------- */

static store_status
etcd_get(void *impl, const char *name, struct store_secret **outp)
{
	return store_memory_ops.get(((struct store_etcd *)impl)->mem, name, outp);
}

static bool
etcd_contains(void *impl, const char *name)
{
	return store_memory_ops.contains(((struct store_etcd *)impl)->mem, name);
}

static store_status
etcd_read(void *impl, const char *name, store_visit_fn visit, void *arg)
{
	return store_memory_ops.read(((struct store_etcd *)impl)->mem, name, visit, arg);
}

static store_status
etcd_list(void *impl, const char *type, store_visit_fn visit, void *arg)
{
	return store_memory_ops.list(((struct store_etcd *)impl)->mem, type, visit, arg);
}

static store_status
etcd_resolve(void *impl, const char *type, const char *path, size_t path_len,
    struct store_secret **outp, size_t *match_lenp)
{
	return store_memory_ops.resolve(
	    ((struct store_etcd *)impl)->mem, type, path, path_len, outp, match_lenp);
}

static size_t
etcd_count(void *impl)
{
	return store_memory_ops.count(((struct store_etcd *)impl)->mem);
}

static uint64_t
etcd_revision(void *impl)
{
	struct store_etcd *e = impl;
	uint64_t rev;

	(void)pthread_mutex_lock(&e->mu);
	rev = e->revision;
	(void)pthread_mutex_unlock(&e->mu);
	return rev;
}

bool
store_etcd_wait_revision(void *impl, uint64_t rev, int timeout_ms)
{
	struct store_etcd *e = impl;
	uint64_t start = sd_now_ms();
	bool asked = false;
	bool ok;

	(void)pthread_mutex_lock(&e->mu);
	while (e->revision < rev && !atomic_load(&e->stop)) {
		uint64_t now = sd_now_ms();
		uint64_t until;
		struct timespec ts;

		if (now - start >= (uint64_t)timeout_ms)
			break;
		/* Not there after a moment while the watch is quiet: the revision may be one
		 * the watch will never report (a change outside the prefix), or the watch is
		 * stuck; a fresh list settles both. (A watch that is busy applying is only
		 * behind: no list, which would cost more than waiting.) */
		if (!asked && now - start >= 100 && now - e->last_applied >= 200) {
			asked = true;
			atomic_store(&e->relist, true);
			atomic_store(&e->wake, true);
		}
		until = now + 50;
		ts.tv_sec = (time_t)(until / 1000);
		ts.tv_nsec = (long)(until % 1000) * 1000000L;
		(void)pthread_cond_timedwait(&e->cv, &e->mu, &ts);
	}
	ok = e->revision >= rev;
	(void)pthread_mutex_unlock(&e->mu);
	return ok;
}

static void
etcd_health(void *impl, struct store_health *h)
{
	struct store_etcd *e = impl;

	(void)pthread_mutex_lock(&e->mu);
	h->shared = true;
	h->serving = e->serving;
	h->writable = e->writable;
	h->revision = e->revision;
	h->latest = e->latest > e->revision ? e->latest : e->revision;
	h->lag_ms = e->behind_since != 0 ? sd_now_ms() - e->behind_since : 0;
	(void)snprintf(h->detail, sizeof(h->detail), "%s", e->detail);
	if (e->foreign > 0 && h->detail[0] == '\0')
		(void)snprintf(h->detail, sizeof(h->detail),
		    "%llu value(s) in etcd are sealed under another key and were skipped",
		    (unsigned long long)e->foreign);
	(void)pthread_mutex_unlock(&e->mu);
}

const struct store_ops store_etcd_ops = {
    .name = "etcd",
    .open = etcd_open,
    .close = etcd_close,
    .put = store_etcd_put,
    .get = etcd_get,
    .contains = etcd_contains,
    .read = etcd_read,
    .remove = store_etcd_remove,
    .list = etcd_list,
    .resolve = etcd_resolve,
    .count = etcd_count,
    .rekey = store_etcd_rekey,
    .revision = etcd_revision,
    .wait_revision = store_etcd_wait_revision,
    .put_tagged = store_etcd_put_tagged,
    .remove_tagged = store_etcd_remove_tagged,
    .health = etcd_health,
};

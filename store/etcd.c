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
 * What it does not do: no leases, no temporary secrets (those stay in each node's memory
 * store), no HTTP (etcd_http.c), no cryptography (seal.c).
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

static void
changed(struct store_etcd *e, const char *name)
{
	if (e->on_change != NULL)
		e->on_change(e->on_change_arg, name);
}

static void
set_revision(struct store_etcd *e, uint64_t rev)
{
	(void)pthread_mutex_lock(&e->mu);
	if (rev > e->revision)
		e->revision = rev;
	e->last_applied = sd_now_ms();
	(void)pthread_cond_broadcast(&e->cv);
	(void)pthread_mutex_unlock(&e->mu);
}

/* --- listing and reconciling -------------------------------------------------------- */

struct listing {
	struct store_secret **items; /* sorted by name: etcd returns keys in byte order */
	size_t n;
	size_t cap;
	uint64_t revision;
	bool keycheck; /* the marker is there and opened */
};

static void
listing_free(struct listing *l)
{
	store_secret_array_free(l->items, l->n);
	memset(l, 0, sizeof(*l));
}

/*
 * Read the whole prefix at one revision into l. strict (at open): a value no key of ours
 * opens is STORE_BAD_KEY; otherwise such values are skipped and counted in *foreignp.
 */
static store_status
list_all(struct store_etcd *e, bool strict, struct listing *l, uint64_t *foreignp)
{
	json_t *start = store_etcd_key_json(e, "", NULL);
	json_t *end = store_etcd_prefix_end_json(e);
	store_status rc = STORE_NO_MEMORY;

	memset(l, 0, sizeof(*l));
	*foreignp = 0;
	if (start == NULL || end == NULL)
		goto done;
	for (;;) {
		struct etcd_http_result res;
		json_t *req = json_pack("{s:O,s:O,s:I}", "key", start, "range_end", end, "limit",
		    (json_int_t)LIST_PAGE);
		json_t *ans = NULL;
		json_t *kvs;
		size_t i;
		json_t *kv;
		char *last = NULL;

		if (req == NULL)
			goto done;
		if (l->revision != 0)
			(void)json_object_set_new(
			    req, "revision", json_integer((json_int_t)l->revision));
		rc = etcd_http_call(e->http, "/v3/kv/range", req, e->timeout_ms, &ans, &res);
		json_decref(req);
		if (rc != STORE_OK) {
			rc = STORE_UNAVAILABLE;
			goto done;
		}
		if (l->revision == 0)
			l->revision =
			    (uint64_t)etcd_int(json_object_get(ans, "header"), "revision");
		kvs = json_object_get(ans, "kvs");
		json_array_foreach(kvs, i, kv)
		{
			size_t vlen = 0;
			uint8_t *v = etcd_unb64(json_object_get(kv, "value"), &vlen);
			char *rel = store_etcd_rel_key(e, kv);
			struct store_secret *s = NULL;
			store_status orc;

			free(last);
			last = NULL;
			if (rel == NULL || v == NULL) {
				free(v);
				free(rel);
				continue;
			}
			orc = store_etcd_open_value(e, rel, v, vlen, &s);
			free(v);
			if (orc == STORE_OK && strcmp(rel, KEYCHECK) == 0) {
				l->keycheck = true;
				store_secret_free(s);
				s = NULL;
			} else if (orc == STORE_OK && strncmp(rel, SECRETS, 2) != 0) {
				store_secret_free(s); /* not ours to serve */
				s = NULL;
			} else if (orc != STORE_OK && orc != STORE_NO_MEMORY) {
				(*foreignp)++;
				if (strict) {
					free(rel);
					json_decref(ans);
					rc = orc == STORE_BAD_KEY ? STORE_BAD_KEY : STORE_CORRUPT;
					goto done;
				}
			} else if (orc == STORE_NO_MEMORY) {
				free(rel);
				json_decref(ans);
				rc = STORE_NO_MEMORY;
				goto done;
			}
			if (s != NULL) {
				if (l->n == l->cap) {
					size_t cap = l->cap == 0 ? 64 : l->cap * 2;
					struct store_secret **items =
					    realloc(l->items, cap * sizeof(*items));

					if (items == NULL) {
						store_secret_free(s);
						free(rel);
						json_decref(ans);
						rc = STORE_NO_MEMORY;
						goto done;
					}
					l->items = items;
					l->cap = cap;
				}
				l->items[l->n++] = s;
			}
			last = rel;
		}
		if (!json_is_true(json_object_get(ans, "more")) || json_array_size(kvs) == 0) {
			free(last);
			json_decref(ans);
			break;
		}
		/* Next page: from just after the last key. */
		kv = json_array_get(kvs, json_array_size(kvs) - 1);
		{
			size_t klen = 0;
			uint8_t *k = etcd_unb64(json_object_get(kv, "key"), &klen);
			uint8_t *next = k != NULL ? realloc(k, klen + 1) : NULL;

			free(last);
			json_decref(ans);
			if (next == NULL) {
				free(k);
				rc = STORE_NO_MEMORY;
				goto done;
			}
			next[klen] = 0;
			json_decref(start);
			start = etcd_b64(next, klen + 1);
			free(next);
			if (start == NULL) {
				rc = STORE_NO_MEMORY;
				goto done;
			}
		}
	}
	rc = STORE_OK;
done:
	json_decref(start);
	json_decref(end);
	if (rc != STORE_OK)
		listing_free(l);
	return rc;
}

struct stale_names {
	const struct listing *l;
	size_t pos;
	char **names;
	size_t n;
	size_t cap;
	bool failed;
};

/* Mirror names (in order) that the listing (in order) does not hold. */
static bool
collect_stale(const struct store_secret *s, void *arg)
{
	struct stale_names *sn = arg;
	int c = 1;

	while (sn->pos < sn->l->n && (c = strcmp(sn->l->items[sn->pos]->name, s->name)) < 0)
		sn->pos++;
	if (sn->pos < sn->l->n && c == 0)
		return true;
	if (sn->n == sn->cap) {
		size_t cap = sn->cap == 0 ? 16 : sn->cap * 2;
		char **names = realloc(sn->names, cap * sizeof(*names));

		if (names == NULL) {
			sn->failed = true;
			return false;
		}
		sn->names = names;
		sn->cap = cap;
	}
	if ((sn->names[sn->n] = strdup(s->name)) == NULL) {
		sn->failed = true;
		return false;
	}
	sn->n++;
	return true;
}

/* Make the mirror equal to the listing (taken). report: call on_change for each name put or
 * removed; false for the first load at open, which changes nothing a reader could have seen
 * (as the sqlcipher backend's load reports nothing). A re-list reports every listed name, not
 * only the ones whose value differs: an extra invalidation costs a cache miss, a missing one
 * a stale read. */
static store_status
reconcile(struct store_etcd *e, struct listing *l, bool report)
{
	struct stale_names sn = {.l = l};
	store_status rc;

	rc = store_memory_ops.list(e->mem, NULL, collect_stale, &sn);
	if (rc == STORE_OK && sn.failed)
		rc = STORE_NO_MEMORY;
	for (size_t i = 0; rc == STORE_OK && i < l->n; i++) {
		bool created = false;
		char *name = strdup(l->items[i]->name);

		if (name == NULL) {
			rc = STORE_NO_MEMORY;
			break;
		}
		rc = store_memory_ops.put(e->mem, l->items[i], STORE_CONFLICT_REPLACE, &created);
		l->items[i] = NULL; /* taken */
		if (rc == STORE_OK && report)
			changed(e, name);
		free(name);
	}
	for (size_t i = 0; rc == STORE_OK && i < sn.n; i++) {
		if (store_memory_ops.remove(e->mem, sn.names[i]) == STORE_OK && report)
			changed(e, sn.names[i]);
	}
	for (size_t i = 0; i < sn.n; i++)
		free(sn.names[i]);
	free(sn.names);
	if (rc == STORE_OK)
		set_revision(e, l->revision);
	listing_free(l);
	return rc;
}

/* --- the watch ----------------------------------------------------------------------- */

/* Apply one watch event. */
static void
apply_event(struct store_etcd *e, const json_t *ev)
{
	const json_t *kv = json_object_get(ev, "kv");
	const char *type = json_string_value(json_object_get(ev, "type"));
	char *rel = store_etcd_rel_key(e, kv);
	struct store_secret *s = NULL;

	if (rel == NULL || strncmp(rel, SECRETS, 2) != 0 || rel[2] == '\0') {
		free(rel);
		return;
	}
	if (type != NULL && strcmp(type, "DELETE") == 0) {
		(void)store_memory_ops.remove(e->mem, rel + 2);
	} else {
		size_t vlen = 0;
		uint8_t *v = etcd_unb64(json_object_get(kv, "value"), &vlen);
		bool created;

		if (v != NULL && store_etcd_open_value(e, rel, v, vlen, &s) == STORE_OK) {
			(void)store_memory_ops.put(e->mem, s, STORE_CONFLICT_REPLACE, &created);
		} else {
			/* Not ours to read: no stale copy stays either. */
			(void)store_memory_ops.remove(e->mem, rel + 2);
			(void)pthread_mutex_lock(&e->mu);
			e->foreign++;
			(void)pthread_mutex_unlock(&e->mu);
		}
		free(v);
	}
	changed(e, rel + 2);
	free(rel);
}

static bool
on_watch(json_t *msg, void *arg)
{
	struct store_etcd *e = arg;
	json_t *result = json_object_get(msg, "result");
	json_t *events;
	json_t *ev;
	uint64_t top = 0;
	size_t i;

	if (!json_is_object(result)) {
		atomic_store(&e->relist, true); /* an error in the stream */
		return false;
	}
	if (json_is_true(json_object_get(result, "canceled")) ||
	    etcd_int(result, "compact_revision") != 0) {
		atomic_store(&e->relist, true);
		return false;
	}
	/* The revision applied is that of the last event: a response's header revision
	 * (and that of the "created" answer) may run ahead of events still to come. */
	events = json_object_get(result, "events");
	json_array_foreach(events, i, ev)
	{
		uint64_t rev = (uint64_t)etcd_int(json_object_get(ev, "kv"), "mod_revision");

		apply_event(e, ev);
		if (rev > top)
			top = rev;
	}
	if (top > 0)
		set_revision(e, top);
	return !atomic_load(&e->stop);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	(void)nanosleep(&ts, NULL);
}

static void *
watch_main(void *arg)
{
	struct store_etcd *e = arg;

	while (!atomic_load(&e->stop)) {
		json_t *create;
		uint64_t from;

		atomic_store(&e->wake, false);
		if (atomic_exchange(&e->relist, false)) {
			struct listing l;
			uint64_t foreign = 0;

			if (list_all(e, false, &l, &foreign) != STORE_OK ||
			    reconcile(e, &l, true) != STORE_OK) {
				atomic_store(&e->relist, true);
				sleep_ms(200);
				continue;
			}
		}
		(void)pthread_mutex_lock(&e->mu);
		from = e->revision + 1;
		(void)pthread_mutex_unlock(&e->mu);
		create = json_pack("{s:{s:o,s:o,s:I}}", "create_request", "key",
		    store_etcd_key_json(e, "", NULL), "range_end", store_etcd_prefix_end_json(e),
		    "start_revision", (json_int_t)from);
		if (create == NULL) {
			sleep_ms(200);
			continue;
		}
		if (etcd_http_watch(e->http, create, &e->wake, 0, on_watch, e) != STORE_OK &&
		    !atomic_load(&e->stop))
			sleep_ms(100); /* the next endpoint, after a breath */
		json_decref(create);
	}
	return NULL;
}

/* --- the health probe ---------------------------------------------------------------- */

static void *
probe_main(void *arg)
{
	struct store_etcd *e = arg;

	while (!atomic_load(&e->stop)) {
		struct etcd_http_result res;
		json_t *ans = NULL;
		json_t *req = json_pack("{s:o,s:o,s:I,s:s,s:s,s:b}", "key",
		    store_etcd_key_json(e, SECRETS, NULL), "range_end",
		    store_etcd_prefix_end_json(e), "limit", (json_int_t)1, "sort_order", "DESCEND",
		    "sort_target", "MOD", "keys_only", 1);
		store_status rc = req != NULL ? etcd_http_call(e->http, "/v3/kv/range", req,
		                                    PROBE_TIMEOUT_MS, &ans, &res)
		                              : STORE_NO_MEMORY;
		uint64_t now = sd_now_ms();
		bool restart = false;

		json_decref(req);
		(void)pthread_mutex_lock(&e->mu);
		e->writable = rc == STORE_OK;
		if (rc == STORE_OK) {
			uint64_t top = (uint64_t)etcd_int(
			    json_array_get(json_object_get(ans, "kvs"), 0), "mod_revision");

			e->latest = (uint64_t)etcd_int(json_object_get(ans, "header"), "revision");
			if (top > e->revision) {
				if (e->behind_since == 0)
					e->behind_since = now;
				restart = now - e->behind_since > STALL_MS;
			} else {
				e->behind_since = 0;
			}
			e->detail[0] = '\0';
		} else {
			(void)snprintf(e->detail, sizeof(e->detail),
			    "etcd has no quorum or cannot be reached (%.100s)", res.message);
		}
		(void)pthread_mutex_unlock(&e->mu);
		json_decref(ans);
		if (restart) {
			atomic_store(&e->relist, true);
			atomic_store(&e->wake, true);
			(void)pthread_mutex_lock(&e->mu);
			e->behind_since = 0;
			(void)pthread_mutex_unlock(&e->mu);
		}
		for (int i = 0; i < PROBE_MS / 50 && !atomic_load(&e->stop); i++)
			sleep_ms(50);
	}
	return NULL;
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
	struct listing l = {0};
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
	rc = list_all(e, true, &l, &foreign);
	if (rc != STORE_OK)
		goto fail;
	if (!l.keycheck) {
		/* Either a new cluster, or the marker is there under a key that is not ours
		 * (list_all refused that already). */
		rc = keycheck_create(e);
		if (rc != STORE_OK)
			goto fail;
	}
	rc = reconcile(e, &l, false);
	if (rc != STORE_OK)
		goto fail;
	e->serving = true;
	e->writable = true;
	rc = STORE_IO;
	if (pthread_create(&e->watch_thread, NULL, watch_main, e) != 0)
		goto fail;
	e->watch_started = true;
	if (pthread_create(&e->probe_thread, NULL, probe_main, e) != 0)
		goto fail;
	e->probe_started = true;
	*implp = e;
	return STORE_OK;
fail:
	listing_free(&l);
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
    .health = etcd_health,
};

/*
 * etcd_mirror.c: the etcd backend's mirror: listing the prefix into it and reconciling,
 * the watch thread that follows the prefix, and the health probe. See etcd.c for the design
 * and etcd_internal.h for the functions etcd.c calls.
 *
 * Thread safety: the watch and probe threads run these; e->mu guards the revision and the
 * health fields, the mirror has its own lock.
 */
#include "etcd_internal.h"
#include "memory_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

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

void
store_etcd_listing_free(struct etcd_listing *l)
{
	store_secret_array_free(l->items, l->n);
	memset(l, 0, sizeof(*l));
}

/* One page of the prefix from start, at l->revision once known (the first page sets it).
 * *ansp: etcd's answer (caller json_decref's). */
static store_status
list_page(struct store_etcd *e, json_t *start, json_t *end, struct etcd_listing *l, json_t **ansp)
{
	struct etcd_http_result res;
	json_t *req = json_pack(
	    "{s:O,s:O,s:I}", "key", start, "range_end", end, "limit", (json_int_t)LIST_PAGE);
	store_status rc;

	*ansp = NULL;
	if (req == NULL)
		return STORE_NO_MEMORY;
	if (l->revision != 0)
		(void)json_object_set_new(req, "revision", json_integer((json_int_t)l->revision));
	rc = etcd_http_call(e->http, "/v3/kv/range", req, e->timeout_ms, ansp, &res);
	json_decref(req);
	if (rc != STORE_OK) {
		json_decref(*ansp);
		*ansp = NULL;
		return STORE_UNAVAILABLE;
	}
	if (l->revision == 0)
		l->revision = (uint64_t)etcd_int(json_object_get(*ansp, "header"), "revision");
	return STORE_OK;
}

/* Add one kv of a range answer to l: a secret of ours is appended (etcd answers in key
 * order, so l stays sorted), the marker noted, anything else skipped. A value no key of
 * ours opens is counted in *foreignp and, when strict, is the answer (STORE_BAD_KEY or
 * STORE_CORRUPT). */
static store_status
listing_add(
    struct store_etcd *e, bool strict, struct etcd_listing *l, const json_t *kv, uint64_t *foreignp)
{
	size_t vlen = 0;
	uint8_t *v = etcd_unb64(json_object_get(kv, "value"), &vlen);
	char *rel = store_etcd_rel_key(e, kv);
	struct store_secret *s = NULL;
	store_status rc = STORE_OK;

	if (rel == NULL || v == NULL)
		goto done;
	rc = store_etcd_open_value(e, rel, v, vlen, &s);
	if (rc == STORE_NO_MEMORY)
		goto done;
	if (rc != STORE_OK) {
		(*foreignp)++;
		rc = !strict ? STORE_OK : rc == STORE_BAD_KEY ? STORE_BAD_KEY : STORE_CORRUPT;
		goto done;
	}
	if (strcmp(rel, KEYCHECK) == 0) {
		l->keycheck = true;
		goto done;
	}
	if (strncmp(rel, SECRETS, 2) != 0)
		goto done; /* not ours to serve */
	if (l->n == l->cap) {
		size_t cap = l->cap == 0 ? 64 : l->cap * 2;
		struct store_secret **items = realloc(l->items, cap * sizeof(*items));

		if (items == NULL) {
			rc = STORE_NO_MEMORY;
			goto done;
		}
		l->items = items;
		l->cap = cap;
	}
	l->items[l->n++] = s;
	s = NULL;
done:
	store_secret_free(s);
	free(rel);
	free(v);
	return rc;
}

/* The range start just after the last key of kvs (that key and a 0 byte), base64; NULL
 * when out of memory. */
static json_t *
after_last_key(const json_t *kvs)
{
	const json_t *kv = json_array_get(kvs, json_array_size(kvs) - 1);
	size_t klen = 0;
	uint8_t *k = etcd_unb64(json_object_get(kv, "key"), &klen);
	uint8_t *next = k != NULL ? realloc(k, klen + 1) : NULL;
	json_t *start;

	if (next == NULL) {
		free(k);
		return NULL;
	}
	next[klen] = 0;
	start = etcd_b64(next, klen + 1);
	free(next);
	return start;
}

store_status
store_etcd_list_all(struct store_etcd *e, bool strict, struct etcd_listing *l, uint64_t *foreignp)
{
	json_t *start = store_etcd_key_json(e, "", NULL);
	json_t *end = store_etcd_prefix_end_json(e);
	store_status rc = STORE_NO_MEMORY;
	bool more = true;

	memset(l, 0, sizeof(*l));
	*foreignp = 0;
	if (start == NULL || end == NULL)
		goto done;
	while (more) {
		json_t *ans = NULL;
		json_t *kvs;
		json_t *kv;
		size_t i;

		rc = list_page(e, start, end, l, &ans);
		if (rc != STORE_OK)
			goto done;
		kvs = json_object_get(ans, "kvs");
		json_array_foreach(kvs, i, kv)
		{
			rc = listing_add(e, strict, l, kv, foreignp);
			if (rc != STORE_OK)
				break;
		}
		more = rc == STORE_OK && json_is_true(json_object_get(ans, "more")) &&
		       json_array_size(kvs) > 0;
		if (more) {
			json_decref(start);
			start = after_last_key(kvs);
			if (start == NULL)
				rc = STORE_NO_MEMORY;
		}
		json_decref(ans);
		if (rc != STORE_OK)
			goto done;
	}
done:
	json_decref(start);
	json_decref(end);
	if (rc != STORE_OK)
		store_etcd_listing_free(l);
	return rc;
}

struct stale_names {
	const struct etcd_listing *l;
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
store_status
store_etcd_reconcile(struct store_etcd *e, struct etcd_listing *l, bool report)
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
	store_etcd_listing_free(l);
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

void *
store_etcd_watch_main(void *arg)
{
	struct store_etcd *e = arg;

	while (!atomic_load(&e->stop)) {
		json_t *create;
		uint64_t from;

		atomic_store(&e->wake, false);
		if (atomic_exchange(&e->relist, false)) {
			struct etcd_listing l;
			uint64_t foreign = 0;

			if (store_etcd_list_all(e, false, &l, &foreign) != STORE_OK ||
			    store_etcd_reconcile(e, &l, true) != STORE_OK) {
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

void *
store_etcd_probe_main(void *arg)
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

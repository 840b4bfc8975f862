/*
 * etcd_write.c: the write path of the "etcd" backend: put (with a tag), remove and rekey.
 * See etcd.c for the backend, its mirror, watch and probe.
 *
 * Every write is one etcd transaction, refused at once (nothing sent) while the probe says
 * etcd cannot commit. Creates compare create_revision == 0 and read the key back when the
 * compare fails, so a value carrying this write's tag (an earlier attempt whose answer was
 * lost, or the same request resent through another node) is answered as success; a write
 * whose answer never came is looked up by its tag before it is reported as failed. A write
 * returns once this node's mirror holds it (bounded).
 *
 * What it does not do: no change to the mirror (only the watch applies changes, so the
 * mirror follows etcd's order), no HTTP (etcd_http.c), no cryptography (seal.c).
 *
 * Thread safety: any number of writes at once; e->mu guards the seals and the health.
 */
#include "clock.h"
#include "etcd_internal.h"
#include "memory_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* Refuse at once while the probe says etcd cannot commit: nothing is sent. */
static bool
writable(struct store_etcd *e)
{
	bool w;

	(void)pthread_mutex_lock(&e->mu);
	w = e->writable;
	(void)pthread_mutex_unlock(&e->mu);
	return w;
}

/* After a failed write: etcd could not be reached or could not commit, so refuse writes
 * until the probe succeeds again. An error etcd answered about the request itself (too
 * large, say) says nothing of the cluster and changes nothing here. */
static store_status
mark_unwritable(struct store_etcd *e, const struct etcd_http_result *res)
{
	if (res->http_code != 0 && res->http_code < 500 && res->grpc_code != 14 &&
	    res->grpc_code != 4)
		return STORE_IO;
	(void)pthread_mutex_lock(&e->mu);
	e->writable = false;
	(void)snprintf(e->detail, sizeof(e->detail), "a write failed: %.120s", res->message);
	(void)pthread_mutex_unlock(&e->mu);
	return STORE_UNAVAILABLE;
}

/* Read the key's value (linearizable) and its tag. *presentp false when absent. */
static store_status
read_tag(struct store_etcd *e, const char *name, bool *presentp, uint64_t *tagp, uint64_t *revp)
{
	struct etcd_http_result res;
	json_t *req = json_pack("{s:o}", "key", store_etcd_key_json(e, SECRETS, name));
	json_t *ans = NULL;
	json_t *kv;
	store_status rc;

	*presentp = false;
	if (req == NULL)
		return STORE_NO_MEMORY;
	rc = etcd_http_call(e->http, "/v3/kv/range", req, e->timeout_ms, &ans, &res);
	json_decref(req);
	if (rc != STORE_OK)
		return STORE_UNAVAILABLE;
	kv = json_array_get(json_object_get(ans, "kvs"), 0);
	*revp = (uint64_t)etcd_int(json_object_get(ans, "header"), "revision");
	if (kv != NULL) {
		size_t vlen = 0;
		uint8_t *v = etcd_unb64(json_object_get(kv, "value"), &vlen);

		*presentp = true;
		*tagp = 0;
		if (v != NULL)
			(void)store_seal_peek(v, vlen, NULL, tagp);
		*revp = (uint64_t)etcd_int(kv, "mod_revision");
		free(v);
	}
	json_decref(ans);
	return STORE_OK;
}

store_status
store_etcd_put_tagged(
    void *impl, struct store_secret *s, enum store_conflict mode, uint64_t tag, bool *createdp)
{
	struct store_etcd *e = impl;
	struct etcd_http_result res;
	uint8_t *v = NULL;
	size_t vlen = 0;
	json_t *req = NULL;
	json_t *ans = NULL;
	uint64_t rev = 0;
	store_status rc;

	*createdp = false;
	if (!writable(e)) {
		rc = STORE_UNAVAILABLE;
		goto done;
	}
	rc = STORE_FULL;
	if (!store_memory_ops.contains(e->mem, s->name) &&
	    store_memory_ops.count(e->mem) >= e->max_secrets)
		goto done;
	/* Without the caller's tag, a random one still tells our retries apart. */
	while (tag == 0)
		if (getrandom(&tag, sizeof(tag), 0) != sizeof(tag)) {
			rc = STORE_IO;
			goto done;
		}
	rc = store_etcd_seal_value(e, s, tag, &v, &vlen);
	if (rc != STORE_OK)
		goto done;
	rc = STORE_NO_MEMORY;
	if (mode == STORE_CONFLICT_REPLACE)
		req = json_pack("{s:[{s:{s:o,s:o}}]}", "success", "request_put", "key",
		    store_etcd_key_json(e, SECRETS, s->name), "value", etcd_b64(v, vlen));
	else
		req = json_pack("{s:[{s:s,s:o,s:s}],s:[{s:{s:o,s:o}}],s:[{s:{s:o}}]}", "compare",
		    "target", "CREATE", "key", store_etcd_key_json(e, SECRETS, s->name),
		    "create_revision", "0", "success", "request_put", "key",
		    store_etcd_key_json(e, SECRETS, s->name), "value", etcd_b64(v, vlen), "failure",
		    "request_range", "key", store_etcd_key_json(e, SECRETS, s->name));
	if (req == NULL)
		goto done;
	rc = etcd_http_call(e->http, "/v3/kv/txn", req, e->timeout_ms, &ans, &res);
	if (rc != STORE_OK) {
		bool present = false;
		uint64_t found = 0;

		if (!res.maybe_sent) {
			rc = mark_unwritable(e, &res);
			goto done;
		}
		/* No answer, but it may have committed: look. */
		rc = read_tag(e, s->name, &present, &found, &rev);
		if (rc != STORE_OK || !present || found != tag) {
			rc = mark_unwritable(e, &res);
			goto done;
		}
		*createdp = true;
	} else if (json_is_true(json_object_get(ans, "succeeded"))) {
		rev = (uint64_t)etcd_int(json_object_get(ans, "header"), "revision");
		*createdp = true;
	} else {
		json_t *kv = json_array_get(
		    json_object_get(
		        json_object_get(
		            json_array_get(json_object_get(ans, "responses"), 0), "response_range"),
		        "kvs"),
		    0);
		size_t flen = 0;
		uint8_t *fv = etcd_unb64(json_object_get(kv, "value"), &flen);
		uint64_t found = 0;

		if (fv != NULL)
			(void)store_seal_peek(fv, flen, NULL, &found);
		free(fv);
		rev = (uint64_t)etcd_int(kv, "mod_revision");
		if (found == tag) {
			*createdp = true; /* our own earlier attempt */
		} else if (mode == STORE_CONFLICT_ERROR) {
			rc = STORE_EXISTS;
		}
	}
	/* Acknowledge once this node reads what it wrote (bounded: the write is committed
	 * whatever the watch does). */
	if (rev != 0)
		(void)store_etcd_wait_revision(e, rev, e->timeout_ms);
done:
	json_decref(req);
	json_decref(ans);
	free(v);
	store_secret_free(s);
	return rc;
}

store_status
store_etcd_put(void *impl, struct store_secret *s, enum store_conflict mode, bool *createdp)
{
	return store_etcd_put_tagged(impl, s, mode, 0, createdp);
}

/* The lease drop markers are put under: the one granted within DONE_TTL_S / 2 seconds, or
 * a new one (POST /v3/lease/grant). 0 when etcd granted none. */
static int64_t
done_lease(struct store_etcd *e, bool fresh)
{
	struct etcd_http_result res;
	json_t *req = NULL;
	json_t *ans = NULL;
	uint64_t now = sd_now_ms();
	int64_t id = 0;

	(void)pthread_mutex_lock(&e->mu);
	if (!fresh && e->done_lease != 0 && now - e->done_lease_ms < DONE_TTL_S * 1000u / 2)
		id = e->done_lease;
	(void)pthread_mutex_unlock(&e->mu);
	if (id != 0)
		return id;
	req = json_pack("{s:I}", "TTL", (json_int_t)DONE_TTL_S);
	if (req != NULL &&
	    etcd_http_call(e->http, "/v3/lease/grant", req, e->timeout_ms, &ans, &res) == STORE_OK)
		id = etcd_int(ans, "ID");
	json_decref(req);
	json_decref(ans);
	if (id != 0) {
		/* Two threads may both grant one: the later wins, the other expires unused. */
		(void)pthread_mutex_lock(&e->mu);
		e->done_lease = id;
		e->done_lease_ms = now;
		(void)pthread_mutex_unlock(&e->mu);
	}
	return id;
}

/* The marker key of a drop's tag, as a JSON string (NULL: out of memory). */
static json_t *
done_key(struct store_etcd *e, uint64_t tag)
{
	char hex[17];

	(void)snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)tag);
	return store_etcd_key_json(e, DONE, hex);
}

/* Whether the marker of tag is there (linearizable read). */
static store_status
read_done(struct store_etcd *e, uint64_t tag, bool *presentp, uint64_t *revp)
{
	struct etcd_http_result res;
	json_t *req = json_pack("{s:o}", "key", done_key(e, tag));
	json_t *ans = NULL;
	store_status rc;

	*presentp = false;
	if (req == NULL)
		return STORE_NO_MEMORY;
	rc = etcd_http_call(e->http, "/v3/kv/range", req, e->timeout_ms, &ans, &res);
	json_decref(req);
	if (rc != STORE_OK)
		return STORE_UNAVAILABLE;
	*presentp = json_array_size(json_object_get(ans, "kvs")) > 0;
	*revp = (uint64_t)etcd_int(json_object_get(ans, "header"), "revision");
	json_decref(ans);
	return STORE_OK;
}

/* One attempt of a drop's transaction: delete the key if it exists and put the marker of
 * tag beside it; when it does not exist, read the marker instead. */
static store_status
remove_txn(struct store_etcd *e, const char *name, uint64_t tag, int64_t lease, json_t **ansp,
    struct etcd_http_result *res)
{
	json_t *req = json_pack("{s:[{s:s,s:s,s:o,s:s}],s:[{s:{s:o}},{s:{s:o,s:s,s:I}}],"
	                        "s:[{s:{s:o}}]}",
	    "compare", "target", "CREATE", "result", "GREATER", "key",
	    store_etcd_key_json(e, SECRETS, name), "create_revision", "0", "success",
	    "request_delete_range", "key", store_etcd_key_json(e, SECRETS, name), "request_put",
	    "key", done_key(e, tag), "value", "", "lease", (json_int_t)lease, "failure",
	    "request_range", "key", done_key(e, tag));
	store_status rc;

	if (req == NULL)
		return STORE_NO_MEMORY;
	rc = etcd_http_call(e->http, "/v3/kv/txn", req, e->timeout_ms, ansp, res);
	json_decref(req);
	return rc;
}

store_status
store_etcd_remove_tagged(void *impl, const char *name, uint64_t tag)
{
	struct store_etcd *e = impl;
	struct etcd_http_result res;
	json_t *ans = NULL;
	json_t *kvs;
	uint64_t rev = 0;
	int64_t lease;
	bool present = false;
	store_status rc;

	if (!writable(e))
		return STORE_UNAVAILABLE;
	/* Without the caller's tag, a random one still tells our own retries apart. */
	while (tag == 0)
		if (getrandom(&tag, sizeof(tag), 0) != sizeof(tag))
			return STORE_IO;
	lease = done_lease(e, false);
	if (lease == 0)
		return STORE_UNAVAILABLE;
	rc = remove_txn(e, name, tag, lease, &ans, &res);
	if (rc == STORE_IO && res.http_code != 0 && res.http_code < 500 &&
	    strstr(res.message, "lease not found") != NULL) {
		/* Revoked or expired early (etcd restored from a snapshot, say): a new one. */
		lease = done_lease(e, true);
		if (lease == 0)
			return STORE_UNAVAILABLE;
		rc = remove_txn(e, name, tag, lease, &ans, &res);
	}
	if (rc != STORE_OK) {
		/* No answer, but it may have committed: its marker says. */
		if (!res.maybe_sent || read_done(e, tag, &present, &rev) != STORE_OK || !present)
			return mark_unwritable(e, &res);
		rc = STORE_OK;
	} else {
		rev = (uint64_t)etcd_int(json_object_get(ans, "header"), "revision");
		kvs = json_object_get(
		    json_object_get(
		        json_array_get(json_object_get(ans, "responses"), 0), "response_range"),
		    "kvs");
		/* Gone: by this very request (an earlier attempt, or the same request sent
		 * through another node whose answer was lost) when its marker is there. */
		rc = json_is_true(json_object_get(ans, "succeeded")) || json_array_size(kvs) > 0
		         ? STORE_OK
		         : STORE_NOT_FOUND;
		json_decref(ans);
	}
	(void)store_etcd_wait_revision(e, rev, e->timeout_ms);
	return rc;
}

store_status
store_etcd_remove(void *impl, const char *name)
{
	return store_etcd_remove_tagged(impl, name, 0);
}

/* Keys re-sealed per transaction (etcd allows 128 operations per transaction by default:
 * a compare and a put per key). */
#define RESEAL_BATCH 60

/*
 * Append to compare and success what re-sealing kv (a range answer's key-value) under the
 * current key takes: a compare of its mod_revision and a put. Nothing when it is sealed under
 * kid already or is not ours to open.
 */
static store_status
reseal_add(
    struct store_etcd *e, const json_t *kv, const uint8_t *kid, json_t *compare, json_t *success)
{
	char *rel = store_etcd_rel_key(e, kv);
	size_t vlen = 0;
	uint8_t *v = etcd_unb64(json_object_get(kv, "value"), &vlen);
	uint8_t have[STORE_SEAL_KID_LEN];
	uint64_t tag = 0;
	struct store_secret *s = NULL;
	struct store_seal use;
	uint8_t *nv = NULL;
	size_t nlen = 0;
	store_status rc = STORE_OK;

	if (rel == NULL || v == NULL || !store_seal_peek(v, vlen, have, &tag) ||
	    memcmp(have, kid, sizeof(have)) == 0)
		goto done;
	rc = store_etcd_open_value(e, rel, v, vlen, &s);
	if (rc != STORE_OK)
		goto done;
	if (strncmp(rel, SECRETS, 2) == 0) {
		/* open_value renamed it for the mirror; the seal binds the key. */
		struct store_secret *named = NULL;

		rc = store_secret_new(
		    rel, s->type, s->scope, s->n_scope, s->fields, s->n_fields, &named);
		store_secret_free(s);
		s = named;
		if (rc != STORE_OK)
			goto done;
	}
	(void)pthread_mutex_lock(&e->mu);
	use = e->seal;
	(void)pthread_mutex_unlock(&e->mu);
	rc = store_seal_secret(&use, s, tag, &nv, &nlen);
	store_seal_wipe(&use);
	if (rc != STORE_OK)
		goto done;
	rc = json_array_append_new(compare,
	         json_pack("{s:s,s:O,s:I}", "target", "MOD", "key", json_object_get(kv, "key"),
	             "mod_revision", (json_int_t)etcd_int(kv, "mod_revision"))) == 0 &&
	             json_array_append_new(
	                 success, json_pack("{s:{s:O,s:o}}", "request_put", "key",
	                              json_object_get(kv, "key"), "value", etcd_b64(nv, nlen))) == 0
	         ? STORE_OK
	         : STORE_NO_MEMORY;
done:
	free(nv);
	free(v);
	free(rel);
	store_secret_free(s);
	return rc;
}

/* Run one re-sealing transaction; *okp: every compare held. */
static store_status
reseal_commit(struct store_etcd *e, json_t *compare, json_t *success, bool *okp)
{
	struct etcd_http_result res;
	json_t *req = json_pack("{s:O,s:O}", "compare", compare, "success", success);
	json_t *ans = NULL;
	store_status rc;

	*okp = false;
	if (req == NULL)
		return STORE_NO_MEMORY;
	rc = etcd_http_call(e->http, "/v3/kv/txn", req, e->timeout_ms, &ans, &res);
	json_decref(req);
	if (rc == STORE_OK)
		*okp = json_is_true(json_object_get(ans, "succeeded"));
	json_decref(ans);
	return rc == STORE_OK ? STORE_OK : STORE_UNAVAILABLE;
}

/* Re-seal one key alone, reading it again after each lost compare (a concurrent write may
 * have sealed it under the old key just before the switch). */
static store_status
reseal_key(struct store_etcd *e, const json_t *kv, const uint8_t *kid)
{
	json_t *fresh = NULL;
	store_status rc = STORE_UNAVAILABLE;

	for (int attempt = 0; attempt < 5; attempt++) {
		struct etcd_http_result res;
		json_t *compare = json_array();
		json_t *success = json_array();
		json_t *req;
		json_t *ans = NULL;
		bool ok = false;

		rc = compare != NULL && success != NULL ? reseal_add(e, kv, kid, compare, success)
		                                        : STORE_NO_MEMORY;
		if (rc == STORE_OK && json_array_size(success) > 0)
			rc = reseal_commit(e, compare, success, &ok);
		else
			ok = true; /* nothing to do */
		json_decref(compare);
		json_decref(success);
		if (rc != STORE_OK || ok)
			break;
		/* Changed meanwhile: read it again. */
		req = json_pack("{s:O}", "key", json_object_get(kv, "key"));
		rc = req != NULL
		         ? etcd_http_call(e->http, "/v3/kv/range", req, e->timeout_ms, &ans, &res)
		         : STORE_NO_MEMORY;
		json_decref(req);
		if (rc != STORE_OK) {
			rc = STORE_UNAVAILABLE;
			break;
		}
		json_decref(fresh);
		fresh = ans;
		kv = json_array_get(json_object_get(fresh, "kvs"), 0);
		if (kv == NULL)
			break; /* dropped meanwhile */
		rc = STORE_UNAVAILABLE;
	}
	json_decref(fresh);
	return rc;
}

/* Re-seal the keys of one range answer page: batches, and key by key for a batch whose
 * compares did not all hold. */
static store_status
reseal_page(struct store_etcd *e, const json_t *kvs, const uint8_t *kid)
{
	size_t n = json_array_size(kvs);
	store_status rc = STORE_OK;

	for (size_t i = 0; i < n && rc == STORE_OK; i += RESEAL_BATCH) {
		size_t end = i + RESEAL_BATCH < n ? i + RESEAL_BATCH : n;
		json_t *compare = json_array();
		json_t *success = json_array();
		bool ok = false;

		rc = compare != NULL && success != NULL ? STORE_OK : STORE_NO_MEMORY;
		for (size_t k = i; k < end && rc == STORE_OK; k++)
			rc = reseal_add(e, json_array_get(kvs, k), kid, compare, success);
		if (rc == STORE_OK && json_array_size(success) > 0)
			rc = reseal_commit(e, compare, success, &ok);
		else
			ok = true;
		json_decref(compare);
		json_decref(success);
		for (size_t k = i; k < end && rc == STORE_OK && !ok; k++)
			rc = reseal_key(e, json_array_get(kvs, k), kid);
	}
	return rc;
}

store_status
store_etcd_rekey(void *impl, const uint8_t *key, size_t key_len)
{
	struct store_etcd *e = impl;
	struct store_seal next;
	json_t *start = NULL;
	json_t *end = NULL;
	uint8_t kid[STORE_SEAL_KID_LEN];
	store_status rc;

	if (key_len != STORE_KEY_LEN)
		return STORE_INVALID;
	rc = store_seal_init(&next, key, key_len);
	if (rc != STORE_OK)
		return rc;
	if (!writable(e)) {
		store_seal_wipe(&next);
		return STORE_UNAVAILABLE;
	}
	(void)pthread_mutex_lock(&e->mu);
	if (memcmp(next.kid, e->seal.kid, sizeof(kid)) != 0) {
		e->old_seal = e->seal;
		e->has_old = true;
		e->seal = next;
	}
	memcpy(kid, e->seal.kid, sizeof(kid));
	(void)pthread_mutex_unlock(&e->mu);
	store_seal_wipe(&next);
	start = store_etcd_key_json(e, "", NULL);
	end = store_etcd_prefix_end_json(e);
	rc = start != NULL && end != NULL ? STORE_OK : STORE_NO_MEMORY;
	/* Page through every key, re-sealing what another key sealed. */
	while (rc == STORE_OK) {
		struct etcd_http_result res;
		json_t *req = json_pack("{s:O,s:O,s:I}", "key", start, "range_end", end, "limit",
		    (json_int_t)LIST_PAGE);
		json_t *ans = NULL;
		json_t *kvs;

		if (req == NULL || etcd_http_call(e->http, "/v3/kv/range", req, e->timeout_ms, &ans,
		                       &res) != STORE_OK) {
			json_decref(req);
			rc = req == NULL ? STORE_NO_MEMORY : STORE_UNAVAILABLE;
			break;
		}
		json_decref(req);
		kvs = json_object_get(ans, "kvs");
		rc = reseal_page(e, kvs, kid);
		if (rc == STORE_OK && json_is_true(json_object_get(ans, "more")) &&
		    json_array_size(kvs) > 0) {
			size_t klen = 0;
			uint8_t *k = etcd_unb64(
			    json_object_get(json_array_get(kvs, json_array_size(kvs) - 1), "key"),
			    &klen);
			uint8_t *nk = k != NULL ? realloc(k, klen + 1) : NULL;

			if (nk == NULL) {
				free(k);
				rc = STORE_NO_MEMORY;
			} else {
				nk[klen] = 0;
				json_decref(start);
				start = etcd_b64(nk, klen + 1);
				free(nk);
				if (start == NULL)
					rc = STORE_NO_MEMORY;
			}
			json_decref(ans);
			continue;
		}
		json_decref(ans);
		break;
	}
	json_decref(start);
	json_decref(end);
	return rc;
}

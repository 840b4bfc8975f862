/*
 * etcd_http.c: etcd's v3 JSON gateway over libcurl. See etcd_http.h.
 *
 * curl and HTTP details stay here: a transport failure, a timeout or an etcd error becomes
 * STORE_IO with the codes in struct etcd_http_result, and nothing of curl crosses the
 * header. Authentication: with a user, a token from /v3/auth/authenticate goes in the
 * Authorization header of every call; a call refused for its token gets a new one once.
 */
#include "etcd_http.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

#define ETCD_MAX_ENDPOINTS 16
#define POOL_MAX 128
/* Longest answer accepted from etcd (a list page of 1,000 secrets is far below). */
#define ANSWER_MAX ((size_t)256 * 1024 * 1024)

struct etcd_http {
	char *endpoints[ETCD_MAX_ENDPOINTS];
	size_t n_endpoints;
	atomic_size_t current; /* index of the endpoint that last answered */
	char *ca_file;
	char *cert_file;
	char *key_file;
	char *user;
	char *password;     /* wiped at close */
	pthread_mutex_t mu; /* pool and token */
	CURL *pool[POOL_MAX];
	size_t n_pool;
	char *token; /* "Authorization: <token>" header line, or NULL */
	char last_error[160]; /* the last failed call's res.message (mu) */
};

/* A growing buffer for an answer. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};

static bool
buf_add(struct buf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap == 0 ? 4096 : b->cap;
		char *d;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (cap > ANSWER_MAX)
			return false;
		d = realloc(b->data, cap);
		if (d == NULL)
			return false;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return true;
}

static size_t
write_body(char *p, size_t size, size_t n, void *arg)
{
	return buf_add(arg, p, size * n) ? size * n : 0;
}

/* Free a string from json_dumps with jansson's own free: the server may have given jansson
 * allocation functions of its own (a wiping allocator). */
static void
json_text_free(char *text)
{
	json_malloc_t m = NULL;
	json_free_t f = NULL;

	if (text == NULL)
		return;
	explicit_bzero(text, strlen(text));
	json_get_alloc_funcs(&m, &f);
	if (f != NULL)
		f(text);
	else
		free(text);
}

static char *
dup_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

store_status
etcd_http_open(const struct store_etcd_config *cfg, struct etcd_http **hp)
{
	struct etcd_http *h = NULL;
	char *list = NULL;
	char *save = NULL;
	store_status rc = STORE_INVALID;

	*hp = NULL;
	if (cfg == NULL || cfg->endpoints == NULL || cfg->endpoints[0] == '\0')
		return STORE_INVALID;
	h = calloc(1, sizeof(*h));
	list = strdup(cfg->endpoints);
	if (h == NULL || list == NULL || pthread_mutex_init(&h->mu, NULL) != 0) {
		free(h);
		free(list);
		return STORE_NO_MEMORY;
	}
	for (char *t = strtok_r(list, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		size_t n = strlen(t);

		while (n > 0 && t[n - 1] == '/')
			t[--n] = '\0';
		if (n == 0)
			continue;
		if (h->n_endpoints == ETCD_MAX_ENDPOINTS ||
		    (strncmp(t, "http://", 7) != 0 && strncmp(t, "https://", 8) != 0))
			goto fail;
		h->endpoints[h->n_endpoints] = strdup(t);
		if (h->endpoints[h->n_endpoints] == NULL) {
			rc = STORE_NO_MEMORY;
			goto fail;
		}
		h->n_endpoints++;
	}
	if (h->n_endpoints == 0)
		goto fail;
	rc = STORE_NO_MEMORY;
	h->ca_file = dup_or_null(cfg->ca_file);
	h->cert_file = dup_or_null(cfg->cert_file);
	h->key_file = dup_or_null(cfg->key_file);
	h->user = dup_or_null(cfg->user);
	h->password = dup_or_null(cfg->password);
	if ((cfg->ca_file != NULL && cfg->ca_file[0] != '\0' && h->ca_file == NULL) ||
	    (cfg->user != NULL && cfg->user[0] != '\0' && h->user == NULL))
		goto fail;
	rc = STORE_INVALID;
	if ((h->cert_file == NULL) != (h->key_file == NULL) ||
	    (h->user != NULL && h->password == NULL))
		goto fail;
	free(list);
	*hp = h;
	return STORE_OK;
fail:
	free(list);
	etcd_http_close(h);
	return rc;
}

void
etcd_http_close(struct etcd_http *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->n_pool; i++)
		curl_easy_cleanup(h->pool[i]);
	for (size_t i = 0; i < h->n_endpoints; i++)
		free(h->endpoints[i]);
	free(h->ca_file);
	free(h->cert_file);
	free(h->key_file);
	free(h->user);
	if (h->password != NULL) {
		explicit_bzero(h->password, strlen(h->password));
		free(h->password);
	}
	if (h->token != NULL) {
		explicit_bzero(h->token, strlen(h->token));
		free(h->token);
	}
	(void)pthread_mutex_destroy(&h->mu);
	free(h);
}

static CURL *
handle_take(struct etcd_http *h)
{
	CURL *c = NULL;

	(void)pthread_mutex_lock(&h->mu);
	if (h->n_pool > 0)
		c = h->pool[--h->n_pool];
	(void)pthread_mutex_unlock(&h->mu);
	return c != NULL ? c : curl_easy_init();
}

static void
handle_put(struct etcd_http *h, CURL *c)
{
	(void)pthread_mutex_lock(&h->mu);
	if (h->n_pool < POOL_MAX) {
		h->pool[h->n_pool++] = c;
		c = NULL;
	}
	(void)pthread_mutex_unlock(&h->mu);
	if (c != NULL)
		curl_easy_cleanup(c);
}

/* Set the options every request shares. headers: the caller's list (borrowed). */
static void
setup(struct etcd_http *h, CURL *c, const char *url, const char *body, struct curl_slist *headers,
    long timeout_ms)
{
	curl_easy_reset(c);
	(void)curl_easy_setopt(c, CURLOPT_URL, url);
	(void)curl_easy_setopt(c, CURLOPT_POST, 1L);
	(void)curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	(void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	(void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(
	    c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 1000 ? timeout_ms : 1000L);
	(void)curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	(void)curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	(void)curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	if (h->ca_file != NULL)
		(void)curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
	if (h->cert_file != NULL) {
		(void)curl_easy_setopt(c, CURLOPT_SSLCERT, h->cert_file);
		(void)curl_easy_setopt(c, CURLOPT_SSLKEY, h->key_file);
	}
}

/* Headers for one request: JSON, and the token when there is one. */
static struct curl_slist *
make_headers(struct etcd_http *h, bool with_token)
{
	struct curl_slist *l = curl_slist_append(NULL, "Content-Type: application/json");
	struct curl_slist *t;

	if (l == NULL || !with_token)
		return l;
	(void)pthread_mutex_lock(&h->mu);
	t = h->token != NULL ? curl_slist_append(l, h->token) : l;
	(void)pthread_mutex_unlock(&h->mu);
	if (t == NULL) {
		curl_slist_free_all(l);
		return NULL;
	}
	return t;
}

/* Read etcd's error object of an answer into res: {"error":..,"code":N,"message":..} or,
 * in a stream, {"error":{"grpc_code":N,...}}. */
static void
read_error(json_t *ans, struct etcd_http_result *res)
{
	json_t *e = json_object_get(ans, "error");
	json_t *code = json_object_get(ans, "code");
	const char *msg = json_string_value(json_object_get(ans, "message"));

	if (json_is_object(e)) {
		code = json_object_get(e, "grpc_code");
		msg = json_string_value(json_object_get(e, "message"));
	} else if (msg == NULL) {
		msg = json_string_value(e);
	}
	res->grpc_code = json_is_integer(code) ? (int)json_integer_value(code) : 0;
	(void)snprintf(res->message, sizeof(res->message), "%s", msg != NULL ? msg : "error");
}

/* One POST to one endpoint. STORE_OK with *outp for HTTP 200. */
static store_status
post_once(struct etcd_http *h, size_t ep, const char *path, const char *body, long timeout_ms,
    bool with_token, json_t **outp, struct etcd_http_result *res)
{
	char url[512];
	struct buf b = {NULL, 0, 0};
	struct curl_slist *headers = NULL;
	CURL *c = NULL;
	CURLcode cc;
	long code = 0;
	json_t *ans = NULL;
	store_status rc = STORE_NO_MEMORY;
	char errbuf[CURL_ERROR_SIZE] = ""; /* curl's detail (which TLS check failed, say) */

	*outp = NULL;
	if (snprintf(url, sizeof(url), "%s%s", h->endpoints[ep], path) >= (int)sizeof(url))
		return STORE_INVALID;
	headers = make_headers(h, with_token);
	c = handle_take(h);
	if (headers == NULL || c == NULL)
		goto done;
	setup(h, c, url, body, headers, timeout_ms);
	(void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_body);
	(void)curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	(void)curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	cc = curl_easy_perform(c);
	(void)curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	rc = STORE_IO;
	if (cc != CURLE_OK) {
		/* Anything after the connection was made may have reached etcd. */
		if (cc != CURLE_COULDNT_CONNECT && cc != CURLE_COULDNT_RESOLVE_HOST)
			res->maybe_sent = true;
		res->timed_out = cc == CURLE_OPERATION_TIMEDOUT;
		(void)snprintf(res->message, sizeof(res->message), "%s: %.120s", h->endpoints[ep],
		    errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
		goto done;
	}
	(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	res->http_code = (int)code;
	ans = b.data != NULL ? json_loadb(b.data, b.len, 0, NULL) : NULL;
	if (code != 200) {
		res->maybe_sent = true;
		if (ans != NULL)
			read_error(ans, res);
		else /* etcd's plain-text refusals (of a client certificate, say) */
			(void)snprintf(res->message, sizeof(res->message), "%s: HTTP %ld: %.*s",
			    h->endpoints[ep], code, b.data != NULL ? (int)strcspn(b.data, "\r\n") : 0,
			    b.data != NULL ? b.data : "");
		goto done;
	}
	if (!json_is_object(ans)) {
		res->maybe_sent = true;
		(void)snprintf(
		    res->message, sizeof(res->message), "%s: answer is not JSON", h->endpoints[ep]);
		goto done;
	}
	*outp = ans;
	ans = NULL;
	rc = STORE_OK;
done:
	json_decref(ans);
	curl_slist_free_all(headers);
	if (c != NULL)
		handle_put(h, c);
	free(b.data);
	return rc;
}

/* Get a new token with the user and password. */
static store_status
authenticate(struct etcd_http *h, size_t ep, long timeout_ms, struct etcd_http_result *res)
{
	json_t *req = json_pack("{s:s,s:s}", "name", h->user, "password", h->password);
	json_t *ans = NULL;
	char *body = NULL;
	char *line = NULL;
	const char *tok;
	store_status rc = STORE_NO_MEMORY;

	if (req == NULL || (body = json_dumps(req, JSON_COMPACT)) == NULL)
		goto done;
	rc = post_once(h, ep, "/v3/auth/authenticate", body, timeout_ms, false, &ans, res);
	if (rc != STORE_OK)
		goto done;
	tok = json_string_value(json_object_get(ans, "token"));
	rc = STORE_PERMISSION;
	if (tok == NULL)
		goto done;
	rc = STORE_NO_MEMORY;
	line = malloc(strlen(tok) + sizeof("Authorization: "));
	if (line == NULL)
		goto done;
	(void)sprintf(line, "Authorization: %s", tok);
	(void)pthread_mutex_lock(&h->mu);
	if (h->token != NULL) {
		explicit_bzero(h->token, strlen(h->token));
		free(h->token);
	}
	h->token = line;
	(void)pthread_mutex_unlock(&h->mu);
	rc = STORE_OK;
done:
	json_text_free(body);
	json_decref(req);
	json_decref(ans);
	return rc;
}

static bool
need_token(struct etcd_http *h)
{
	bool need;

	(void)pthread_mutex_lock(&h->mu);
	need = h->user != NULL && h->token == NULL;
	(void)pthread_mutex_unlock(&h->mu);
	return need;
}

/* An error worth trying another endpoint for: no answer, or etcd says it cannot serve. */
static bool
retryable(const struct etcd_http_result *res)
{
	return res->http_code == 0 || res->http_code >= 500 || res->grpc_code == 14 ||
	       res->grpc_code == 4;
}

/* etcd refused the token (expired or revoked). */
static bool
token_refused(const struct etcd_http_result *res)
{
	return res->grpc_code == 16 || strstr(res->message, "token") != NULL;
}

store_status
etcd_http_call(struct etcd_http *h, const char *path, json_t *body, int timeout_ms, json_t **outp,
    struct etcd_http_result *res)
{
	uint64_t deadline = sd_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 5000);
	char *text = json_dumps(body, JSON_COMPACT);
	size_t tries = 0;
	bool reauth = false;
	store_status rc = STORE_IO;
	/* The most telling failure for last_error: a refusal (a TLS check, etcd's answer)
	 * rather than the time-out of a retry squeezed by the deadline. */
	char why[sizeof(res->message)] = "";

	memset(res, 0, sizeof(*res));
	*outp = NULL;
	if (text == NULL)
		return STORE_NO_MEMORY;
	/* Every endpoint at least once, then round again while time is left. */
	while (tries < h->n_endpoints || sd_now_ms() + 50 < deadline) {
		size_t ep = atomic_load(&h->current) % h->n_endpoints;
		uint64_t now = sd_now_ms();
		long left = now < deadline ? (long)(deadline - now) : 0;
		bool sent = res->maybe_sent;

		if (left < 100)
			left = 100;
		tries++;
		memset(res, 0, sizeof(*res));
		res->maybe_sent = sent;
		rc = STORE_OK;
		if (need_token(h))
			rc = authenticate(h, ep, left, res);
		if (rc == STORE_OK)
			rc = post_once(h, ep, path, text, left, true, outp, res);
		if (rc == STORE_OK || rc == STORE_NO_MEMORY || rc == STORE_INVALID)
			break;
		if (why[0] == '\0' || !res->timed_out)
			memcpy(why, res->message, sizeof(why));
		if (h->user != NULL && !reauth && res->http_code != 0 && token_refused(res)) {
			reauth = true;
			(void)pthread_mutex_lock(&h->mu);
			if (h->token != NULL) {
				explicit_bzero(h->token, strlen(h->token));
				free(h->token);
				h->token = NULL;
			}
			(void)pthread_mutex_unlock(&h->mu);
			continue;
		}
		if (!retryable(res))
			break;
		/* Next endpoint, unless another thread moved on already. */
		(void)atomic_compare_exchange_strong(&h->current, &ep, ep + 1);
		if (tries >= h->n_endpoints && sd_now_ms() + 50 < deadline) {
			struct timespec ts = {0, 50 * 1000000L};

			(void)nanosleep(&ts, NULL);
		}
		if (sd_now_ms() >= deadline && tries >= h->n_endpoints)
			break;
	}
	json_text_free(text);
	if (rc != STORE_OK) {
		(void)pthread_mutex_lock(&h->mu);
		(void)snprintf(h->last_error, sizeof(h->last_error), "%s",
		    why[0] != '\0' ? why : res->message);
		(void)pthread_mutex_unlock(&h->mu);
	}
	return rc;
}

void
etcd_http_last_error(struct etcd_http *h, char *buf, size_t len)
{
	(void)pthread_mutex_lock(&h->mu);
	(void)snprintf(buf, len, "%s", h->last_error);
	(void)pthread_mutex_unlock(&h->mu);
}

/* State of one watch transfer. */
struct watch_state {
	struct buf line;
	etcd_watch_fn fn;
	void *arg;
	const atomic_bool *stop;
	bool ended; /* fn returned false */
	uint64_t last_byte_ms;
	int idle_ms;
};

static size_t
watch_body(char *p, size_t size, size_t n, void *arg)
{
	struct watch_state *ws = arg;
	size_t total = size * n;

	ws->last_byte_ms = sd_now_ms();
	for (size_t i = 0; i < total; i++) {
		if (p[i] != '\n') {
			if (!buf_add(&ws->line, p + i, 1))
				return 0;
			continue;
		}
		if (ws->line.len > 0) {
			json_t *msg = json_loadb(ws->line.data, ws->line.len, 0, NULL);
			bool go = msg != NULL && ws->fn(msg, ws->arg);

			json_decref(msg);
			ws->line.len = 0;
			if (!go) {
				ws->ended = true;
				return 0;
			}
		}
	}
	return total;
}

static int
watch_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct watch_state *ws = arg;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	if (atomic_load(ws->stop))
		return 1;
	if (ws->idle_ms > 0 && sd_now_ms() - ws->last_byte_ms > (uint64_t)ws->idle_ms)
		return 1;
	return 0;
}

store_status
etcd_http_watch(struct etcd_http *h, json_t *create, const atomic_bool *stop, int idle_ms,
    etcd_watch_fn fn, void *arg)
{
	struct watch_state ws = {{NULL, 0, 0}, fn, arg, stop, false, sd_now_ms(), idle_ms};
	struct etcd_http_result res = {0};
	struct curl_slist *headers = NULL;
	size_t ep = atomic_load(&h->current) % h->n_endpoints;
	char url[512];
	char *text = NULL;
	CURL *c = NULL;
	CURLcode cc;
	store_status rc = STORE_NO_MEMORY;

	if (snprintf(url, sizeof(url), "%s/v3/watch", h->endpoints[ep]) >= (int)sizeof(url))
		return STORE_INVALID;
	if (need_token(h) && authenticate(h, ep, 2000, &res) != STORE_OK) {
		rc = STORE_IO;
		goto rotate;
	}
	text = json_dumps(create, JSON_COMPACT);
	headers = make_headers(h, true);
	c = curl_easy_init();
	if (text == NULL || headers == NULL || c == NULL)
		goto done;
	setup(h, c, url, text, headers, 0);
	(void)curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 0L);
	(void)curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
	(void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, watch_body);
	(void)curl_easy_setopt(c, CURLOPT_WRITEDATA, &ws);
	(void)curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	(void)curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, watch_progress);
	(void)curl_easy_setopt(c, CURLOPT_XFERINFODATA, &ws);
	cc = curl_easy_perform(c);
	if (ws.ended || atomic_load(stop)) {
		rc = STORE_OK;
		goto done;
	}
	(void)cc;
	rc = STORE_IO;
rotate:
	(void)atomic_compare_exchange_strong(&h->current, &ep, ep + 1);
done:
	if (c != NULL)
		curl_easy_cleanup(c);
	curl_slist_free_all(headers);
	json_text_free(text);
	free(ws.line.data);
	return rc;
}

json_t *
etcd_b64(const void *buf, size_t len)
{
	size_t out_len = 4 * ((len + 2) / 3);
	char *out = malloc(out_len + 1);
	json_t *s;

	if (out == NULL || len > INT32_MAX / 2) {
		free(out);
		return NULL;
	}
	(void)EVP_EncodeBlock((unsigned char *)out, buf, (int)len);
	s = json_stringn_nocheck(out, out_len);
	free(out);
	return s;
}

uint8_t *
etcd_unb64(const json_t *s, size_t *lenp)
{
	const char *in = json_string_value(s);
	size_t in_len = json_string_length(s);
	uint8_t *out;
	int n;
	size_t pad = 0;

	*lenp = 0;
	if (in == NULL)
		return NULL;
	if (in_len % 4 != 0 || in_len > INT32_MAX / 2)
		return NULL;
	out = malloc(in_len / 4 * 3 + 1);
	if (out == NULL)
		return NULL;
	if (in_len == 0) {
		out[0] = 0;
		return out;
	}
	n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)in_len);
	if (n < 0) {
		free(out);
		return NULL;
	}
	if (in[in_len - 1] == '=')
		pad++;
	if (in[in_len - 2] == '=')
		pad++;
	*lenp = (size_t)n - pad;
	out[*lenp] = 0;
	return out;
}

int64_t
etcd_int(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return 0;
}

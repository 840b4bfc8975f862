/*
 * secretctl_stats.c: `secretctl stats`, secretd's figures as a table or JSON.
 *
 * Where the figures come from: secretd's metrics endpoint (`secretd --metrics-listen
 * http://HOST:PORT`), read with one plain HTTP/1.0 GET of /metrics, or a saved scrape
 * (--file, "-" for standard input). So `secretctl stats` prints exactly what Prometheus
 * scrapes, there is no second path to keep equal, and no new rpc in the .proto (the figures
 * name no secret, so they need no token either: the endpoint is for the operator's
 * network). The scrape is parsed strictly as Prometheus' text exposition format 0.0.4
 * (ctl_expfmt_parse): a malformed one is an error, which is how the tests check the
 * server's output.
 *
 * What it does not do: no TLS, no redirects, no chunked responses (secretd's endpoint sends
 * a Content-Length), no secrets: nothing here is wiped because nothing here is secret.
 *
 * Thread safety: single-threaded, like secretctl.
 */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <jansson.h>

#include "secretctl.h"

#define STATS_MAX_BYTES ((size_t)4 * 1024 * 1024)
#define STATS_MAX_SAMPLES 4096
#define STATS_MAX_LABELS 8

const char ctl_usage_stats[] =
    "usage: secretctl stats [--metrics-url URL | --file FILE] [--json]\n"
    "\n"
    "Print secretd's figures: requests by method and status, latency histograms, secrets\n"
    "per storage, group-commit sizes, commit (fsync) latency, connected clients. They are\n"
    "read from secretd's metrics endpoint (see secretd(8)), the same text that\n"
    "Prometheus scrapes; no secret name or value is in them.\n"
    "\n"
    "  --metrics-url URL   the endpoint, http://HOST:PORT (env SECRETD_METRICS_URL;\n"
    "                      default http://127.0.0.1:9464)\n"
    "  --file FILE         read a saved scrape instead (\"-\": standard input)\n"
    "  --json              one JSON object: {\"samples\":[{\"name\",\"labels\",\"value\"}]}\n"
    "\n"
    "The scrape is checked as Prometheus' text format (every sample of a declared type,\n"
    "histogram buckets cumulative and ending in +Inf = _count); a bad one exits 1.\n";

struct sample {
	char *name;
	size_t n_labels;
	char *label_name[STATS_MAX_LABELS];
	char *label_value[STATS_MAX_LABELS];
	double value;
};

struct family {
	char name[128];
	char type[16];
};

struct scrape {
	struct sample *samples;
	size_t n;
	struct family *families;
	size_t n_families;
};

static void
scrape_free(struct scrape *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->samples[i].name);
		for (size_t k = 0; k < s->samples[i].n_labels; k++) {
			free(s->samples[i].label_name[k]);
			free(s->samples[i].label_value[k]);
		}
	}
	free(s->samples);
	free(s->families);
	memset(s, 0, sizeof(*s));
}

static bool
name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

/* A metric or label name at *pp; advances. NULL when there is none. */
static char *
parse_name(const char **pp, const char *end, bool label)
{
	const char *p = *pp;
	char *out;

	if (p == end || !name_char(*p, true) || (label && *p == ':'))
		return NULL;
	while (p < end && name_char(*p, false) && !(label && *p == ':'))
		p++;
	out = strndup(*pp, (size_t)(p - *pp));
	*pp = p;
	return out;
}

/* A quoted label value with the format's escapes (\\, \", \n). */
static char *
parse_label_value(const char **pp, const char *end)
{
	const char *p = *pp;
	char *out;
	size_t n = 0;

	if (p == end || *p != '"')
		return NULL;
	out = malloc((size_t)(end - p) + 1);
	if (out == NULL)
		return NULL;
	for (p++; p < end && *p != '"'; p++) {
		if (*p == '\n')
			goto bad;
		if (*p == '\\') {
			if (++p == end)
				goto bad;
			if (*p == 'n')
				out[n++] = '\n';
			else if (*p == '\\' || *p == '"')
				out[n++] = *p;
			else
				goto bad;
		} else {
			out[n++] = *p;
		}
	}
	if (p == end)
		goto bad;
	out[n] = '\0';
	*pp = p + 1;
	return out;
bad:
	free(out);
	return NULL;
}

/* A sample value: a float, +Inf, -Inf or NaN. */
static bool
parse_value(const char *s, const char *end, double *vp)
{
	char buf[64];
	char *e = NULL;
	size_t n = (size_t)(end - s);

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (strcmp(buf, "+Inf") == 0) {
		*vp = INFINITY;
		return true;
	}
	if (strcmp(buf, "-Inf") == 0) {
		*vp = -INFINITY;
		return true;
	}
	if (strcmp(buf, "NaN") == 0) {
		*vp = NAN;
		return true;
	}
	errno = 0;
	*vp = strtod(buf, &e);
	return errno == 0 && e == buf + n;
}

static const struct family *
family_of(const struct scrape *s, const char *sample_name)
{
	static const char *const suffixes[] = {"", "_bucket", "_sum", "_count"};

	for (size_t i = 0; i < s->n_families; i++) {
		size_t fl = strlen(s->families[i].name);

		if (strncmp(sample_name, s->families[i].name, fl) != 0)
			continue;
		for (size_t k = 0; k < 4; k++)
			if (strcmp(sample_name + fl, suffixes[k]) == 0 &&
			    (k == 0 || strcmp(s->families[i].type, "histogram") == 0 ||
			        (k > 1 && strcmp(s->families[i].type, "summary") == 0)))
				return &s->families[i];
	}
	return NULL;
}

/* One "# HELP" / "# TYPE" / comment line. */
static int
parse_comment(struct scrape *s, const char *p, const char *end, char *err, size_t err_len)
{
	static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
	const char *q;
	char *name;
	size_t tl;

	if (end - p < 7 || (strncmp(p, "# TYPE ", 7) != 0))
		return 0; /* HELP text and other comments are free-form */
	p += 7;
	name = parse_name(&p, end, false);
	if (name == NULL || p == end || *p != ' ' || strlen(name) >= sizeof(s->families[0].name)) {
		free(name);
		(void)snprintf(err, err_len, "bad TYPE line");
		return -1;
	}
	q = p + 1;
	tl = (size_t)(end - q);
	for (size_t i = 0; i < 5; i++)
		if (strlen(types[i]) == tl && strncmp(q, types[i], tl) == 0) {
			struct family *f = &s->families[s->n_families++];

			(void)snprintf(f->name, sizeof(f->name), "%s", name);
			(void)snprintf(f->type, sizeof(f->type), "%s", types[i]);
			free(name);
			return 0;
		}
	(void)snprintf(err, err_len, "TYPE of %s: unknown type", name);
	free(name);
	return -1;
}

/* One sample line. */
static int
parse_sample(struct scrape *s, const char *p, const char *end, char *err, size_t err_len)
{
	struct sample *sm = &s->samples[s->n];
	const char *v;

	memset(sm, 0, sizeof(*sm));
	sm->name = parse_name(&p, end, false);
	if (sm->name == NULL)
		goto bad;
	s->n++; /* from here scrape_free frees it */
	if (p < end && *p == '{') {
		p++;
		while (p < end && *p != '}') {
			size_t k = sm->n_labels;

			if (k == STATS_MAX_LABELS)
				goto bad;
			sm->label_name[k] = parse_name(&p, end, true);
			if (sm->label_name[k] == NULL || p == end || *p != '=')
				goto bad;
			p++;
			sm->label_value[k] = parse_label_value(&p, end);
			sm->n_labels++;
			if (sm->label_value[k] == NULL)
				goto bad;
			if (p < end && *p == ',')
				p++;
			else if (p < end && *p != '}')
				goto bad;
		}
		if (p == end)
			goto bad;
		p++;
	}
	if (p == end || *p != ' ')
		goto bad;
	v = ++p;
	while (p < end && *p != ' ')
		p++;
	if (!parse_value(v, p, &sm->value))
		goto bad;
	if (p < end) { /* an optional timestamp: an integer */
		char *e = NULL;

		(void)strtoll(p + 1, &e, 10);
		if (e != end)
			goto bad;
	}
	if (family_of(s, sm->name) == NULL) {
		(void)snprintf(err, err_len, "sample %s has no TYPE line before it", sm->name);
		return -1;
	}
	return 0;
bad:
	(void)snprintf(err, err_len, "malformed sample line");
	return -1;
}

static const char *
label(const struct sample *sm, const char *name)
{
	for (size_t k = 0; k < sm->n_labels; k++)
		if (strcmp(sm->label_name[k], name) == 0)
			return sm->label_value[k];
	return NULL;
}

/* Labels other than le are equal. */
static bool
same_series(const struct sample *a, const struct sample *b)
{
	size_t na = 0, nb = 0;

	for (size_t k = 0; k < a->n_labels; k++) {
		const char *o;

		if (strcmp(a->label_name[k], "le") == 0)
			continue;
		na++;
		o = label(b, a->label_name[k]);
		if (o == NULL || strcmp(o, a->label_value[k]) != 0)
			return false;
	}
	for (size_t k = 0; k < b->n_labels; k++)
		nb += strcmp(b->label_name[k], "le") != 0;
	return na == nb;
}

/* Histograms: buckets cumulative (non-decreasing le and counts), the last +Inf, equal to
 * the series' _count. */
static int
check_histograms(const struct scrape *s, char *err, size_t err_len)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct sample *first = &s->samples[i];
		const struct family *f = family_of(s, first->name);
		size_t fl;
		double prev_le = -INFINITY, prev = 0, inf = -1;
		bool counted = false;

		if (f == NULL || strcmp(f->type, "histogram") != 0)
			continue;
		fl = strlen(f->name);
		if (strcmp(first->name + fl, "_bucket") != 0 ||
		    (i > 0 && strcmp(s->samples[i - 1].name, first->name) == 0 &&
		        same_series(&s->samples[i - 1], first)))
			continue; /* not the first bucket of a series */
		for (size_t j = i; j < s->n; j++) {
			const struct sample *b = &s->samples[j];
			const char *le = label(b, "le");
			double lev;

			if (strcmp(b->name, first->name) != 0 || !same_series(first, b))
				continue;
			if (le == NULL || !parse_value(le, le + strlen(le), &lev) ||
			    lev < prev_le || b->value < prev) {
				(void)snprintf(err, err_len, "%s: buckets not cumulative", f->name);
				return -1;
			}
			prev_le = lev;
			prev = b->value;
			if (isinf(lev))
				inf = b->value;
		}
		for (size_t j = 0; j < s->n; j++) {
			const struct sample *c = &s->samples[j];

			if (strncmp(c->name, f->name, fl) == 0 &&
			    strcmp(c->name + fl, "_count") == 0 && same_series(first, c)) {
				counted = true;
				if (c->value != inf) {
					(void)snprintf(err, err_len,
					    "%s: +Inf bucket differs from _count", f->name);
					return -1;
				}
			}
		}
		if (inf < 0 || !counted) {
			(void)snprintf(err, err_len, "%s: no +Inf bucket or no _count", f->name);
			return -1;
		}
	}
	return 0;
}

/* Parse a whole scrape strictly. Returns 0, or -1 with a message in err. */
static int
expfmt_parse(const char *text, size_t len, struct scrape *s, char *err, size_t err_len)
{
	const char *p = text;
	const char *end = text + len;
	size_t line = 0;

	memset(s, 0, sizeof(*s));
	s->samples = calloc(STATS_MAX_SAMPLES, sizeof(*s->samples));
	s->families = calloc(STATS_MAX_SAMPLES, sizeof(*s->families));
	if (s->samples == NULL || s->families == NULL) {
		(void)snprintf(err, err_len, "out of memory");
		return -1;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		int rc = 0;
		char msg[200];

		line++;
		if (nl == NULL) {
			(void)snprintf(err, err_len, "line %zu: no newline at the end", line);
			return -1;
		}
		if (s->n == STATS_MAX_SAMPLES || s->n_families == STATS_MAX_SAMPLES) {
			(void)snprintf(err, err_len, "more than %d lines", STATS_MAX_SAMPLES);
			return -1;
		}
		if (nl > p && *p == '#')
			rc = parse_comment(s, p, nl, msg, sizeof(msg));
		else if (nl > p)
			rc = parse_sample(s, p, nl, msg, sizeof(msg));
		if (rc != 0) {
			(void)snprintf(err, err_len, "line %zu: %s", line, msg);
			return -1;
		}
		p = nl + 1;
	}
	return check_histograms(s, err, err_len);
}

/* GET /metrics from url (http://HOST:PORT[/...]); the body into *bufp. */
static int
http_get_metrics(const char *url, char **bufp, size_t *lenp, char *err, size_t err_len)
{
	char host[256], port[16] = "80";
	const char *h = url + 7;
	const char *colon, *slash;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai = NULL;
	struct timeval tv = {10, 0};
	char req[512];
	char *buf = NULL, *body;
	size_t len = 0;
	int fd = -1, rc = -1;

	if (strncmp(url, "http://", 7) != 0) {
		(void)snprintf(err, err_len, "%s: give http://HOST:PORT", url);
		return -1;
	}
	slash = strchr(h, '/');
	if (slash == NULL)
		slash = h + strlen(h);
	colon = memchr(h, ':', (size_t)(slash - h));
	if ((colon != NULL ? colon : slash) - h >= (ptrdiff_t)sizeof(host) ||
	    (colon != NULL && slash - colon - 1 >= (ptrdiff_t)sizeof(port))) {
		(void)snprintf(err, err_len, "%s: bad URL", url);
		return -1;
	}
	(void)snprintf(host, sizeof(host), "%.*s", (int)((colon != NULL ? colon : slash) - h), h);
	if (colon != NULL)
		(void)snprintf(port, sizeof(port), "%.*s", (int)(slash - colon - 1), colon + 1);
	if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL) {
		(void)snprintf(err, err_len, "%s: cannot resolve %s", url, host);
		goto out;
	}
	fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		(void)snprintf(err, err_len, "%s: cannot connect: %s", url, strerror(errno));
		goto out;
	}
	(void)snprintf(req, sizeof(req), "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", host);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		(void)snprintf(err, err_len, "%s: cannot send: %s", url, strerror(errno));
		goto out;
	}
	buf = malloc(STATS_MAX_BYTES + 1);
	if (buf == NULL)
		goto out;
	for (;;) {
		ssize_t n = read(fd, buf + len, STATS_MAX_BYTES - len);

		if (n < 0) {
			(void)snprintf(err, err_len, "%s: cannot read: %s", url, strerror(errno));
			goto out;
		}
		if (n == 0 || (len += (size_t)n) == STATS_MAX_BYTES)
			break;
	}
	buf[len] = '\0';
	if (strncmp(buf, "HTTP/1.", 7) != 0 || len < 12 || strncmp(buf + 9, "200", 3) != 0) {
		(void)snprintf(err, err_len, "%s/metrics: not an HTTP 200 answer", url);
		goto out;
	}
	body = strstr(buf, "\r\n\r\n");
	if (body == NULL) {
		(void)snprintf(err, err_len, "%s/metrics: truncated answer", url);
		goto out;
	}
	body += 4;
	len -= (size_t)(body - buf);
	memmove(buf, body, len + 1);
	*bufp = buf;
	*lenp = len;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	if (fd >= 0)
		(void)close(fd);
	if (ai != NULL)
		freeaddrinfo(ai);
	return rc;
}

static void
print_value(double v)
{
	if (isinf(v))
		(void)printf("%s", v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 1e15)
		(void)printf("%.0f", v);
	else
		(void)printf("%g", v);
}

static int
print_table(const struct scrape *s)
{
	size_t w = 6;

	for (size_t i = 0; i < s->n; i++) {
		size_t l = strlen(s->samples[i].name) + 2;

		for (size_t k = 0; k < s->samples[i].n_labels; k++)
			l += strlen(s->samples[i].label_name[k]) +
			     strlen(s->samples[i].label_value[k]) + 2;
		if (l > w)
			w = l;
	}
	(void)printf("%-*s  %s\n", (int)w, "figure", "value");
	for (size_t i = 0; i < s->n; i++) {
		const struct sample *sm = &s->samples[i];
		char key[1024];
		int n = snprintf(key, sizeof(key), "%s", sm->name);

		for (size_t k = 0; k < sm->n_labels && n > 0 && (size_t)n < sizeof(key); k++)
			n += snprintf(key + n, sizeof(key) - (size_t)n, "%s%s=%s",
			    k == 0 ? "{" : ",", sm->label_name[k], sm->label_value[k]);
		if (sm->n_labels > 0 && n > 0 && (size_t)n < sizeof(key))
			(void)snprintf(key + n, sizeof(key) - (size_t)n, "}");
		(void)printf("%-*s  ", (int)w, key);
		print_value(sm->value);
		(void)printf("\n");
	}
	return CTL_EXIT_OK;
}

static int
print_json(const struct scrape *s)
{
	json_t *arr = json_array();
	json_t *root = json_pack("{s:o}", "samples", arr);
	int rc;

	if (root == NULL)
		return CTL_EXIT_STATUS;
	for (size_t i = 0; i < s->n; i++) {
		const struct sample *sm = &s->samples[i];
		json_t *labels = json_object();
		json_t *v = isfinite(sm->value) ? json_real(sm->value)
		                                : json_string(isnan(sm->value) ? "NaN"
		                                              : sm->value > 0  ? "+Inf"
		                                                               : "-Inf");

		for (size_t k = 0; labels != NULL && k < sm->n_labels; k++)
			(void)json_object_set_new(
			    labels, sm->label_name[k], json_string(sm->label_value[k]));
		if (isfinite(sm->value) && sm->value == floor(sm->value) &&
		    fabs(sm->value) < 9e15) {
			json_decref(v);
			v = json_integer((json_int_t)sm->value);
		}
		(void)json_array_append_new(arr,
		    json_pack("{s:s, s:o, s:o}", "name", sm->name, "labels", labels, "value", v));
	}
	/* Printed straight to stdout: no buffer from jansson's (wiping) allocator to free. */
	rc = json_dumpf(root, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	(void)putchar('\n');
	return rc == 0 ? CTL_EXIT_OK : CTL_EXIT_STATUS;
}

int
ctl_cmd_stats(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"metrics-url", required_argument, NULL, 'u'},
	    {"file", required_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *url = getenv("SECRETD_METRICS_URL");
	const char *file = NULL;
	struct scrape s;
	char err[512];
	char *text = NULL;
	size_t len = 0;
	int c, rc;

	if (url == NULL || url[0] == '\0')
		url = "http://127.0.0.1:9464";
	ctl_sub_reset(ctl, longopts);
	while ((c = ctl_sub_getopt(ctl, argc, argv, "")) != -1) {
		if (c == 'h')
			return ctl_print_help(ctl_usage_stats);
		if (c == 'u')
			url = optarg;
		else if (c == 'f')
			file = optarg;
		else
			return CTL_EXIT_USAGE;
	}
	if (optind != argc)
		return ctl_usage_error("stats: no operands expected");
	if (file != NULL) {
		rc = ctl_read_path(file, &text, &len);
		if (rc != 0) {
			(void)fprintf(stderr, "secretctl: stats: %s: %s\n", file, strerror(rc));
			return CTL_EXIT_USAGE;
		}
	} else if (http_get_metrics(url, &text, &len, err, sizeof(err)) != 0) {
		(void)fprintf(stderr, "secretctl: stats: %s\n", err);
		free(text);
		return CTL_EXIT_STATUS;
	}
	if (expfmt_parse(text, len, &s, err, sizeof(err)) != 0) {
		(void)fprintf(stderr, "secretctl: stats: not Prometheus text format: %s\n", err);
		scrape_free(&s);
		free(text);
		return CTL_EXIT_STATUS;
	}
	rc = ctl->json ? print_json(&s) : print_table(&s);
	scrape_free(&s);
	free(text);
	return rc;
}

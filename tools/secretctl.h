/*
 * secretctl.h: what secretctl's parts share: the one options struct, exit codes, and the
 * output functions (secretctl_output.c) that print results as aligned tables or as the
 * JSON objects of SPEC §4.
 *
 * Not here: talking to secretd other than through <secretd.h>.
 *
 * Thread safety: secretctl is single-threaded.
 */
#ifndef SECRETD_TOOLS_SECRETCTL_H
#define SECRETD_TOOLS_SECRETCTL_H

#include <stdbool.h>
#include <stddef.h>

#include <secretd.h>

enum {
	CTL_EXIT_OK = 0,     /* success */
	CTL_EXIT_STATUS = 1, /* the call failed: a status from the library or server */
	CTL_EXIT_USAGE = 2,  /* bad command line or unreadable input */
};

/* Every option of one run; secretctl's only state. */
struct ctl {
	const char *addr; /* NULL: secretd_default_url */
	char *token;      /* owned, wiped at exit */
	const char *tls_ca;
	const char *tls_cert;
	const char *tls_key;
	const char *tls_server_name;
	int timeout_ms;
	bool json;
	secretd_client *client;
};

/* Print a failed call: JSON error object on stdout with --json, and the message on
 * stderr always. Returns CTL_EXIT_STATUS. */
int ctl_out_error(const struct ctl *ctl, const secretd_error *err);

/* Print a usage error on stderr (never JSON). Returns CTL_EXIT_USAGE. */
int ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Print one result. Each returns CTL_EXIT_OK, or CTL_EXIT_STATUS when the output could
 * not be written or encoded (a message on stderr, never a value).
 */
int ctl_out_created(const struct ctl *ctl, const secretd_create_result *res);
int ctl_out_dropped(const struct ctl *ctl, const secretd_drop_result *res);
int ctl_out_rows(const struct ctl *ctl, const secretd_rows *rows);
int ctl_out_resolved(const struct ctl *ctl, const secretd_resolved_row *rows, size_t n);
/* secret may be NULL: nothing matched (resolve). */
int ctl_out_secret(const struct ctl *ctl, const secretd_secret *secret);
int ctl_out_result(const struct ctl *ctl, const secretd_result *res);

/* Install jansson allocators that wipe every block they free. Call once, first. */
void ctl_json_wipe_init(void);

#endif

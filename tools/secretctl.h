/*
 * secretctl.h: what secretctl's parts share: the one options struct, exit codes, the
 * input and option helpers (secretctl.c), the commands (secretctl_cmd.c, the environment
 * commands exec and env in secretctl_env.c, the tokens-file commands in secretctl_token.c,
 * ...), which only secretctl_main.c's command table calls, and the output functions
 * (secretctl_output.c) that print results as aligned tables or as the JSON objects of
 * SPEC §4.
 *
 * Not here: talking to secretd other than through <secretd.h>.
 *
 * Thread safety: secretctl is single-threaded.
 */
#ifndef SECRETD_TOOLS_SECRETCTL_H
#define SECRETD_TOOLS_SECRETCTL_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <secretd.h>

enum {
	CTL_EXIT_OK = 0,     /* success */
	CTL_EXIT_STATUS = 1, /* the call failed: a status from the library or server */
	CTL_EXIT_USAGE = 2,  /* bad command line or unreadable input */
};

/* Room for one command's long options plus the global ones. */
#define CTL_MAX_OPTS 48

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
	/* A command's long options followed by the global ones (ctl_sub_reset), so that
	 * global options are accepted after the command name too. */
	struct option sub_opts[CTL_MAX_OPTS];
};

/* One command: its name, its entry point (argv[0] is the command) and its help text. */
struct ctl_command {
	const char *name;
	int (*run)(struct ctl *ctl, int argc, char **argv);
	const char *usage;
};

/* The commands and their help texts, for the command table (secretctl_main.c). Each
 * returns an exit code (CTL_EXIT_*; exec: the command's). */
int ctl_cmd_create(struct ctl *ctl, int argc, char **argv); /* secretctl_cmd.c */
int ctl_cmd_drop(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_list(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_get(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_resolve(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_sql(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_rekey(struct ctl *ctl, int argc, char **argv);
extern const char ctl_usage_create[];
extern const char ctl_usage_drop[];
extern const char ctl_usage_list[];
extern const char ctl_usage_get[];
extern const char ctl_usage_resolve[];
extern const char ctl_usage_sql[];
extern const char ctl_usage_rekey[];
int ctl_cmd_exec(struct ctl *ctl, int argc, char **argv); /* secretctl_env.c */
int ctl_cmd_env(struct ctl *ctl, int argc, char **argv);
extern const char ctl_usage_exec[];
extern const char ctl_usage_env[];
int ctl_cmd_token(struct ctl *ctl, int argc, char **argv); /* secretctl_token.c */
extern const char ctl_usage_token[];
int ctl_cmd_stats(struct ctl *ctl, int argc, char **argv); /* secretctl_stats.c */
extern const char ctl_usage_stats[];
int ctl_cmd_export(struct ctl *ctl, int argc, char **argv); /* secretctl_export.c */
extern const char ctl_usage_export[];

/* Helpers of secretctl.c. */

/* Parse the global options of argv up to the command name (and SECRETD_ADDR,
 * SECRETD_TOKEN) into ctl; *helpp is set for -h/--help. Leaves optind at the command.
 * Returns CTL_EXIT_OK or an exit code after printing the error. */
int ctl_parse_global(struct ctl *ctl, int argc, char **argv, bool *helpp);

/* Print help text to stdout; returns CTL_EXIT_OK. */
int ctl_print_help(const char *text);

/* Wipe len bytes at p and free it (NULL-safe). */
void ctl_wipe_free(void *p, size_t len);

/* Read f to EOF into a new NUL-terminated buffer; the caller wipes and frees it with
 * ctl_wipe_free(buf, *lenp + 1). Returns 0 or an errno value. */
int ctl_read_all(FILE *f, char **bufp, size_t *lenp);

/* The same for a file, or stdin when path is "-". */
int ctl_read_path(const char *path, char **bufp, size_t *lenp);

/* Drop one trailing "\n" or "\r\n" in place. */
void ctl_chomp(char *buf, size_t *lenp);

/* Parse memory|temporary|temp, sqlcipher|persistent or any; false when unknown. */
bool ctl_parse_storage(const char *s, secretd_storage *storagep);

/* Open ctl->client from the global options (does not wait for the server). Returns
 * CTL_EXIT_OK, or an exit code after printing the error. */
int ctl_connect(struct ctl *ctl);

/* secretctl health (secretctl_health.c). */
int ctl_cmd_health(struct ctl *ctl, int argc, char **argv);
extern const char ctl_usage_health[];

/*
 * Start parsing a command's own options (longopts, borrowed, {NULL} terminated), then call
 * ctl_sub_getopt until it returns -1. Global options (--json, --addr, --token, ...) met on
 * the way are applied to ctl and not returned. ctl_sub_getopt returns the command's option,
 * 1 for an operand when optstring starts with '-', -1 at the end, or '?' after printing a
 * usage error.
 */
void ctl_sub_reset(struct ctl *ctl, const struct option *longopts);
int ctl_sub_getopt(struct ctl *ctl, int argc, char **argv, const char *optstring);

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
/* env --json: {"status":"OK","env":{NAME:VALUE,...}} (values: value_len bytes each). */
int ctl_out_env(
    const char *const *names, const char *const *values, const size_t *value_lens, size_t n);
/* rekey: the key file's path (human) or {"status":"OK","key_file":...}. */
int ctl_out_rekeyed(const struct ctl *ctl, const char *key_file);
/* token list: a role/id table or {"status":"OK","tokens":[{"role":...,"id":...}]}. */
int ctl_out_tokens(
    const struct ctl *ctl, const char *const *roles, const char *const *ids, size_t n);
/* token new --json: {"status":"OK","role":...,"id":...,"token":...,"tokens_file":...}. */
int ctl_out_token_new(const char *role, const char *id, const char *token, const char *path);

/* Install jansson allocators that wipe every block they free. Call once, first. */
void ctl_json_wipe_init(void);

#endif

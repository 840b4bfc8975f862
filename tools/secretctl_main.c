/*
 * secretctl_main.c: secretctl's entry point and its command table. main parses the global
 * options (secretctl.c), finds the command and runs it; nothing else in secretctl calls
 * back into this file, so the dependencies go one way: main -> commands -> the shared
 * helpers of secretctl.c -> libsecretd.
 *
 * Thread safety: single-threaded. The options live in one struct ctl on main's stack.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <secretd.h>

#include "secretctl.h"

static const char usage_main[] =
    "usage: secretctl [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Manage the secrets of a secretd server.\n"
    "\n"
    "Options:\n"
    "  --addr URL          server (env SECRETD_ADDR; default ipc://$XDG_RUNTIME_DIR/secretd.sock)\n"
    "                      or a comma-separated list of a cluster's nodes (fail-over)\n"
    "  --token T           bearer token; prefer env SECRETD_TOKEN or --token-file (argv is\n"
    "                      visible to other users)\n"
    "  --token-file F      read the token from F\n"
    "  --tls-ca FILE       CA certificate (PEM) for tls+tcp:// servers\n"
    "  --tls-cert FILE     client certificate (PEM), with --tls-key FILE\n"
    "  --tls-server-name N name to verify (default: the URL's host)\n"
    "  --timeout MS        per-call timeout (0: 10 s default; negative: wait forever)\n"
    "  --json              print results as JSON objects, one per line\n"
    "  -h, --help          this help; COMMAND --help for a command's help\n"
    "Global options may also follow the command name (secretctl list --json).\n"
    "\n"
    "Commands:\n"
    "  create   create a secret\n"
    "  drop     drop a secret\n"
    "  list     list secrets (values redacted unless --unredacted)\n"
    "  get      show one secret with its values\n"
    "  resolve  show the secret that applies to a path\n"
    "  sql      run statements (CREATE SECRET, DROP SECRET, FROM duckdb_secrets(), ...)\n"
    "  exec     run a program with secrets' fields in its environment (OPENAI_API_KEY, ...)\n"
    "  env      print export lines that set those variables, for a shell's eval\n"
    "  rekey    rotate the server's database key (admin)\n"
    "  health   the node's readiness: serving, writable, mirror lag (exit 3: read-only)\n"
    "  token    make, list and revoke tokens in a tokens file (no server needed)\n"
    "  stats    print the server's figures (from its --metrics-listen endpoint)\n"
    "  export   print secrets as DuckDB statements (--duckdb), for duckdb -init\n"
    "\n"
    "Exit status: 0 success, 1 the call failed, 2 usage error; exec: the command's.\n";

static const struct ctl_command commands[] = {
    {"create", ctl_cmd_create, ctl_usage_create},
    {"drop", ctl_cmd_drop, ctl_usage_drop},
    {"list", ctl_cmd_list, ctl_usage_list},
    {"get", ctl_cmd_get, ctl_usage_get},
    {"resolve", ctl_cmd_resolve, ctl_usage_resolve},
    {"sql", ctl_cmd_sql, ctl_usage_sql},
    {"exec", ctl_cmd_exec, ctl_usage_exec},
    {"env", ctl_cmd_env, ctl_usage_env},
    {"rekey", ctl_cmd_rekey, ctl_usage_rekey},
    {"health", ctl_cmd_health, ctl_usage_health},
    {"token", ctl_cmd_token, ctl_usage_token},
    {"stats", ctl_cmd_stats, ctl_usage_stats},
    {"export", ctl_cmd_export, ctl_usage_export},
};

/* The command called name, or NULL. */
static const struct ctl_command *
find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int
main(int argc, char **argv)
{
	struct ctl ctl = {.timeout_ms = SECRETD_TIMEOUT_DEFAULT};
	const struct ctl_command *cmd;
	bool help = false;
	int rc;

	ctl_json_wipe_init();
	rc = ctl_parse_global(&ctl, argc, argv, &help);
	if (rc != CTL_EXIT_OK || help) {
		if (help)
			rc = ctl_print_help(usage_main);
		goto done;
	}
	if (optind >= argc) {
		(void)fputs(usage_main, stderr);
		rc = CTL_EXIT_USAGE;
		goto done;
	}
	if (strcmp(argv[optind], "help") == 0) {
		cmd = optind + 1 < argc ? find_command(argv[optind + 1]) : NULL;
		rc = ctl_print_help(cmd != NULL ? cmd->usage : usage_main);
		goto done;
	}
	cmd = find_command(argv[optind]);
	if (cmd == NULL) {
		rc = ctl_usage_error("unknown command '%s'", argv[optind]);
		goto done;
	}
	rc = cmd->run(&ctl, argc - optind, argv + optind);
done:
	secretd_client_close(ctl.client);
	if (ctl.token != NULL)
		ctl_wipe_free(ctl.token, strlen(ctl.token));
	if (fflush(stdout) != 0 && rc == CTL_EXIT_OK)
		rc = CTL_EXIT_STATUS;
	return rc;
}

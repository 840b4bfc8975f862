/*
 * main.c: secretd's command line. Turns flags (and their environment twins) into a
 * server_config and calls server_run; nothing else lives here.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "server.h"
#include "store.h"

/* A number as a string literal, to put the build's constants into usage_text. */
#define STR_(x) #x
#define STR(x) STR_(x)

/* The largest --max-name: libsecretd's results hold a name in SECRETD_NAME_MAX + 1 bytes
 * (client/include/secretd.h; the server does not include the client's header, and the test
 * "limits" checks that the two agree). */
#define MAX_NAME_CAP 255

static const char usage_text[] =
    "Usage: secretd [OPTION]...\n"
    "       secretd rekey [--data-dir DIR] [--key-file FILE]\n"
    "       secretd rekey [--data-dir DIR] --passphrase-file OLD --new-passphrase-file NEW\n"
    "       secretd rekey --persistent-store etcd --etcd-endpoints URLS [--key-file FILE]\n"
    "       secretd migrate-to-etcd [--data-dir DIR] [--key-file FILE] --etcd-endpoints URLS\n"
    "Serve LLM-provider secrets over nng: temporary secrets in memory, persistent ones in\n"
    "an SQLCipher database.\n"
    "\n"
    "Options (each has an environment twin; a flag wins over its variable):\n"
    "  --listen URL        listen on URL: ipc://PATH, tcp://HOST:PORT, tls+tcp://HOST:PORT;\n"
    "                      repeatable (SECRETD_LISTEN, comma-separated)\n"
    "                      default: ipc://$XDG_RUNTIME_DIR/secretd.sock,\n"
    "                      else ipc:///tmp/secretd-$UID/secretd.sock\n"
    "  --notify-listen URL  publish invalidations for caching clients on URL, or `none`\n"
    "                      (SECRETD_NOTIFY_LISTEN); default: PATH.notify.sock next to\n"
    "                      each ipc://PATH.sock listener; same rules as --listen\n"
    "  --data-dir DIR      database directory, mode 0700 (SECRETD_DATA_DIR)\n"
    "                      default: $XDG_DATA_HOME/secretd, else ~/.local/share/secretd\n"
    "  --key-file FILE     raw 256-bit database key, 64 hex digits, mode 0600; created with\n"
    "                      a random key on first start (SECRETD_KEY_FILE)\n"
    "                      default: DIR/secretd.key\n"
    "  --passphrase-file FILE  passphrase mode, for operators who cannot keep a key file:\n"
    "                      the database key is derived from the passphrase in FILE (mode\n"
    "                      0600) with PBKDF2, " STR(STORE_KDF_ITER) " iterations; no key file\n"
    "                      is used (SECRETD_PASSPHRASE_FILE)\n"
    "  --new-passphrase-file FILE  with `secretd rekey` in passphrase mode: the new\n"
    "                      passphrase (SECRETD_NEW_PASSPHRASE_FILE)\n"
    "  --tokens-file FILE  tokens: lines `reader|admin ID SHA256HEX`; reloaded on SIGHUP\n"
    "                      (SECRETD_TOKENS_FILE). Without it only ipc peers with this\n"
    "                      process's uid may call.\n"
    "  --tls-cert FILE     PEM certificate for tls+tcp:// (SECRETD_TLS_CERT)\n"
    "  --tls-key FILE      PEM private key for tls+tcp:// (SECRETD_TLS_KEY)\n"
    "  --tls-ca FILE       require client certificates signed by this CA (SECRETD_TLS_CA)\n"
    "  --insecure          allow plain tcp:// (tokens still required) (SECRETD_INSECURE=1)\n"
    "  --socket-group GRP  make the ipc socket 0660 with group GRP (SECRETD_SOCKET_GROUP)\n"
    "  --audit-file FILE   append one JSON line per state change or denied call\n"
    "                      (SECRETD_AUDIT_FILE)\n"
    "  --metrics-listen URL  serve /metrics (Prometheus text format), /healthz and\n"
    "                      /readyz on http://HOST:PORT; off by default\n"
    "                      (SECRETD_METRICS_LISTEN)\n"
    "  --workers N         worker threads (default: 4 per core) (SECRETD_WORKERS)\n"
    "  --log-level LEVEL   error, warn, info or debug (default: info) (SECRETD_LOG_LEVEL)\n"
    "  --max-frame BYTES   largest request frame (default 65536) (SECRETD_MAX_FRAME)\n"
    "  --max-name BYTES    longest secret name (default and most 255) (SECRETD_MAX_NAME)\n"
    "  --max-value BYTES   longest field value (default 16384) (SECRETD_MAX_VALUE)\n"
    "  --max-fields N      most fields per secret (default 16) (SECRETD_MAX_FIELDS)\n"
    "  --max-scope N       most scope entries per secret (default 16) (SECRETD_MAX_SCOPE)\n"
    "  --max-secrets N     most secrets per storage (default 1000000) (SECRETD_MAX_SECRETS)\n"
    "  -h, --help          show this help and exit\n"
    "  --version           show the version and exit\n"
    "\n"
    "secretd rekey rotates the database key offline (the server must be stopped): a new\n"
    "random key is written to FILE.new, the database is re-encrypted under it, and FILE.new\n"
    "replaces FILE. A crash at any step is finished or undone at the next start. While the\n"
    "server runs, use `secretctl rekey` instead.\n"
    "\n"
    "Signals: SIGTERM/SIGINT drain in-flight requests and close the database; SIGHUP\n"
    "reloads the tokens file.\n"
    "Exit status: 0 after a clean shutdown, 1 when start-up fails, 2 on a usage error.\n";

/* The cluster options, printed after usage_text (one string would pass C's 4095). */
static const char cluster_usage_text[] =
    "\n"
    "Cluster mode (persistent secrets in etcd; temporary ones stay in this node's memory):\n"
    "  --persistent-store S  sqlcipher (default) or etcd (SECRETD_PERSISTENT_STORE)\n"
    "  --etcd-endpoints URLS comma-separated http(s)://HOST:PORT (SECRETD_ETCD_ENDPOINTS)\n"
    "  --etcd-prefix P     key prefix in etcd, ending in / (default /secretd/)\n"
    "                      (SECRETD_ETCD_PREFIX)\n"
    "  --etcd-ca FILE      CA that signed etcd's certificates (SECRETD_ETCD_CA)\n"
    "  --etcd-cert FILE    client certificate for etcd (SECRETD_ETCD_CERT)\n"
    "  --etcd-key FILE     its private key (SECRETD_ETCD_KEY)\n"
    "  --etcd-user NAME    etcd user (SECRETD_ETCD_USER)\n"
    "  --etcd-password-file FILE  that user's password, mode 0600\n"
    "                      (SECRETD_ETCD_PASSWORD_FILE)\n"
    "  --node-name NAME    this node's name in listings of temporary secrets (default:\n"
    "                      the hostname) (SECRETD_NODE_NAME)\n"
    "  --read-wait-ms MS   how long a node behind a client's last seen revision waits\n"
    "                      before answering UNAVAILABLE (default 2000) (SECRETD_READ_WAIT_MS)\n";

enum {
	OPT_LISTEN = 256,
	OPT_DATA_DIR,
	OPT_KEY_FILE,
	OPT_TOKENS_FILE,
	OPT_PASSPHRASE_FILE,
	OPT_NEW_PASSPHRASE_FILE,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_TLS_CA,
	OPT_INSECURE,
	OPT_SOCKET_GROUP,
	OPT_AUDIT_FILE,
	OPT_WORKERS,
	OPT_LOG_LEVEL,
	OPT_MAX_FRAME,
	OPT_MAX_NAME,
	OPT_MAX_VALUE,
	OPT_MAX_FIELDS,
	OPT_MAX_SCOPE,
	OPT_MAX_SECRETS,
	OPT_VERSION,
	OPT_NOTIFY_LISTEN,
	OPT_PERSISTENT_STORE,
	OPT_ETCD_ENDPOINTS,
	OPT_ETCD_PREFIX,
	OPT_ETCD_CA,
	OPT_ETCD_CERT,
	OPT_ETCD_KEY,
	OPT_ETCD_USER,
	OPT_ETCD_PASSWORD_FILE,
	OPT_READ_WAIT_MS,
	OPT_METRICS_LISTEN,
	OPT_NODE_NAME,
};

/* Each option with its environment twin. */
static const struct {
	struct option opt;
	const char *env;
} options[] = {
    {{"listen", required_argument, NULL, OPT_LISTEN}, "SECRETD_LISTEN"},
    {{"data-dir", required_argument, NULL, OPT_DATA_DIR}, "SECRETD_DATA_DIR"},
    {{"key-file", required_argument, NULL, OPT_KEY_FILE}, "SECRETD_KEY_FILE"},
    {{"tokens-file", required_argument, NULL, OPT_TOKENS_FILE}, "SECRETD_TOKENS_FILE"},
    {{"passphrase-file", required_argument, NULL, OPT_PASSPHRASE_FILE}, "SECRETD_PASSPHRASE_FILE"},
    {{"new-passphrase-file", required_argument, NULL, OPT_NEW_PASSPHRASE_FILE},
        "SECRETD_NEW_PASSPHRASE_FILE"},
    {{"tls-cert", required_argument, NULL, OPT_TLS_CERT}, "SECRETD_TLS_CERT"},
    {{"tls-key", required_argument, NULL, OPT_TLS_KEY}, "SECRETD_TLS_KEY"},
    {{"tls-ca", required_argument, NULL, OPT_TLS_CA}, "SECRETD_TLS_CA"},
    {{"insecure", no_argument, NULL, OPT_INSECURE}, "SECRETD_INSECURE"},
    {{"socket-group", required_argument, NULL, OPT_SOCKET_GROUP}, "SECRETD_SOCKET_GROUP"},
    {{"audit-file", required_argument, NULL, OPT_AUDIT_FILE}, "SECRETD_AUDIT_FILE"},
    {{"workers", required_argument, NULL, OPT_WORKERS}, "SECRETD_WORKERS"},
    {{"log-level", required_argument, NULL, OPT_LOG_LEVEL}, "SECRETD_LOG_LEVEL"},
    {{"max-frame", required_argument, NULL, OPT_MAX_FRAME}, "SECRETD_MAX_FRAME"},
    {{"max-name", required_argument, NULL, OPT_MAX_NAME}, "SECRETD_MAX_NAME"},
    {{"max-value", required_argument, NULL, OPT_MAX_VALUE}, "SECRETD_MAX_VALUE"},
    {{"max-fields", required_argument, NULL, OPT_MAX_FIELDS}, "SECRETD_MAX_FIELDS"},
    {{"max-scope", required_argument, NULL, OPT_MAX_SCOPE}, "SECRETD_MAX_SCOPE"},
    {{"max-secrets", required_argument, NULL, OPT_MAX_SECRETS}, "SECRETD_MAX_SECRETS"},
    {{"notify-listen", required_argument, NULL, OPT_NOTIFY_LISTEN}, "SECRETD_NOTIFY_LISTEN"},
    {{"persistent-store", required_argument, NULL, OPT_PERSISTENT_STORE},
        "SECRETD_PERSISTENT_STORE"},
    {{"etcd-endpoints", required_argument, NULL, OPT_ETCD_ENDPOINTS}, "SECRETD_ETCD_ENDPOINTS"},
    {{"etcd-prefix", required_argument, NULL, OPT_ETCD_PREFIX}, "SECRETD_ETCD_PREFIX"},
    {{"etcd-ca", required_argument, NULL, OPT_ETCD_CA}, "SECRETD_ETCD_CA"},
    {{"etcd-cert", required_argument, NULL, OPT_ETCD_CERT}, "SECRETD_ETCD_CERT"},
    {{"etcd-key", required_argument, NULL, OPT_ETCD_KEY}, "SECRETD_ETCD_KEY"},
    {{"etcd-user", required_argument, NULL, OPT_ETCD_USER}, "SECRETD_ETCD_USER"},
    {{"etcd-password-file", required_argument, NULL, OPT_ETCD_PASSWORD_FILE},
        "SECRETD_ETCD_PASSWORD_FILE"},
    {{"read-wait-ms", required_argument, NULL, OPT_READ_WAIT_MS}, "SECRETD_READ_WAIT_MS"},
    {{"metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN}, "SECRETD_METRICS_LISTEN"},
    {{"node-name", required_argument, NULL, OPT_NODE_NAME}, "SECRETD_NODE_NAME"},
    {{"help", no_argument, NULL, 'h'}, NULL},
    {{"version", no_argument, NULL, OPT_VERSION}, NULL},
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

struct cli {
	struct server_config cfg;
	char *listen_env; /* strtok copy of SECRETD_LISTEN */
};

static bool
parse_size(const char *s, size_t min, size_t *out)
{
	char *end = NULL;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min)
		return false;
	*out = (size_t)v;
	return true;
}

/* Apply one option's value; false (with a message) when it is invalid. One case per
 * option, each a few lines: its length is the option table's. */
static bool
apply(struct cli *cli, int id, const char *name, const char *val)
{
	struct server_config *cfg = &cli->cfg;
	size_t n = 0;
	int lvl;

	switch (id) {
	case OPT_LISTEN:
		if (cfg->n_listen == SERVER_MAX_LISTEN) {
			(void)fprintf(
			    stderr, "secretd: at most %d --listen URLs\n", SERVER_MAX_LISTEN);
			return false;
		}
		cfg->listen[cfg->n_listen++] = val;
		return true;
	case OPT_NOTIFY_LISTEN:
		cfg->notify_listen = val;
		return true;
	case OPT_DATA_DIR:
		cfg->data_dir = val;
		return true;
	case OPT_KEY_FILE:
		cfg->key_file = val;
		return true;
	case OPT_TOKENS_FILE:
		cfg->tokens_file = val;
		return true;
	case OPT_PASSPHRASE_FILE:
		cfg->passphrase_file = val;
		return true;
	case OPT_NEW_PASSPHRASE_FILE:
		cfg->new_passphrase_file = val;
		return true;
	case OPT_TLS_CERT:
		cfg->tls_cert = val;
		return true;
	case OPT_TLS_KEY:
		cfg->tls_key = val;
		return true;
	case OPT_TLS_CA:
		cfg->tls_ca = val;
		return true;
	case OPT_INSECURE:
		cfg->insecure = val == NULL || strcmp(val, "1") == 0 || strcmp(val, "true") == 0;
		return true;
	case OPT_SOCKET_GROUP:
		cfg->socket_group = val;
		return true;
	case OPT_AUDIT_FILE:
		cfg->audit_file = val;
		return true;
	case OPT_METRICS_LISTEN:
		cfg->metrics_listen = val;
		return true;
	case OPT_WORKERS:
		if (!parse_size(val, 1, &n) || n > 1024)
			break;
		cfg->workers = (int)n;
		return true;
	case OPT_LOG_LEVEL:
		lvl = log_level_parse(val);
		if (lvl < 0)
			break;
		cfg->log_level = (enum log_level)lvl;
		return true;
	case OPT_MAX_FRAME:
		if (!parse_size(val, 1024, &cfg->limits.max_frame) ||
		    cfg->limits.max_frame > 256u * 1024 * 1024)
			break;
		return true;
	case OPT_MAX_NAME:
		if (!parse_size(val, 1, &cfg->limits.max_name))
			break;
		if (cfg->limits.max_name > MAX_NAME_CAP) {
			(void)fprintf(stderr,
			    "secretd: %s %s is over %d bytes, the longest name libsecretd's "
			    "results hold (SECRETD_NAME_MAX)\n",
			    name, val, MAX_NAME_CAP);
			return false;
		}
		return true;
	case OPT_MAX_VALUE:
		if (!parse_size(val, 1, &cfg->limits.max_value))
			break;
		return true;
	case OPT_MAX_FIELDS:
		if (!parse_size(val, 1, &cfg->limits.max_fields))
			break;
		return true;
	case OPT_MAX_SCOPE:
		if (!parse_size(val, 1, &cfg->limits.max_scope))
			break;
		return true;
	case OPT_MAX_SECRETS:
		if (!parse_size(val, 1, &cfg->limits.max_secrets))
			break;
		return true;
	case OPT_PERSISTENT_STORE:
		if (strcmp(val, "sqlcipher") != 0 && strcmp(val, "etcd") != 0)
			break;
		cfg->persistent_store = val;
		return true;
	case OPT_ETCD_ENDPOINTS:
		cfg->etcd_endpoints = val;
		return true;
	case OPT_ETCD_PREFIX:
		if (val[0] != '/' || val[strlen(val) - 1] != '/')
			break;
		cfg->etcd_prefix = val;
		return true;
	case OPT_ETCD_CA:
		cfg->etcd_ca = val;
		return true;
	case OPT_ETCD_CERT:
		cfg->etcd_cert = val;
		return true;
	case OPT_ETCD_KEY:
		cfg->etcd_key = val;
		return true;
	case OPT_ETCD_USER:
		cfg->etcd_user = val;
		return true;
	case OPT_ETCD_PASSWORD_FILE:
		cfg->etcd_password_file = val;
		return true;
	case OPT_NODE_NAME:
		/* Printed in listings and JSON: short and plain. */
		if (val[0] == '\0' || strlen(val) > 63 || strspn(val,
		        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_") !=
		        strlen(val))
			break;
		cfg->node_name = val;
		return true;
	case OPT_READ_WAIT_MS:
		if (!parse_size(val, 1, &n) || n > 60000)
			break;
		cfg->read_wait_ms = (int)n;
		return true;
	default:
		return false;
	}
	(void)fprintf(stderr, "secretd: invalid value for %s\n", name);
	return false;
}

/* Environment first, so that flags parsed afterwards override it. */
static bool
apply_env(struct cli *cli)
{
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const char *val;

		if (options[i].env == NULL || (val = getenv(options[i].env)) == NULL ||
		    *val == '\0')
			continue;
		if (options[i].opt.val == OPT_LISTEN) {
			char *save = NULL;

			cli->listen_env = strdup(val);
			if (cli->listen_env == NULL)
				return false;
			for (char *t = strtok_r(cli->listen_env, ",", &save); t != NULL;
			     t = strtok_r(NULL, ",", &save))
				if (!apply(cli, OPT_LISTEN, options[i].env, t))
					return false;
			continue;
		}
		if (!apply(cli, options[i].opt.val, options[i].env, val))
			return false;
	}
	return true;
}

int
main(int argc, char **argv)
{
	struct option longopts[N_OPTIONS + 1];
	struct cli cli;
	bool listen_from_flags = false;
	int c;
	int rc;

	memset(&cli, 0, sizeof(cli));
	server_config_default(&cli.cfg);
	for (size_t i = 0; i < N_OPTIONS; i++)
		longopts[i] = options[i].opt;
	memset(&longopts[N_OPTIONS], 0, sizeof(longopts[0]));
	if (!apply_env(&cli)) {
		free(cli.listen_env);
		return 2;
	}
	for (int idx = -1; (c = getopt_long(argc, argv, "h", longopts, &idx)) != -1; idx = -1) {
		char flag[64]; /* the flag as messages name it: "--max-name", not its value */

		(void)snprintf(flag, sizeof(flag), "--%s", idx >= 0 ? longopts[idx].name : "?");
		if (c == 'h') {
			(void)fputs(usage_text, stdout);
			(void)fputs(cluster_usage_text, stdout);
			free(cli.listen_env);
			return 0;
		}
		if (c == OPT_VERSION) {
			(void)printf("secretd %s\n", SECRETD_VERSION);
			free(cli.listen_env);
			return 0;
		}
		if (c == OPT_LISTEN && !listen_from_flags) {
			/* --listen replaces SECRETD_LISTEN rather than adding to it. */
			cli.cfg.n_listen = 0;
			listen_from_flags = true;
		}
		if (c == '?' || !apply(&cli, c, flag, optarg)) {
			(void)fprintf(stderr, "Try 'secretd --help'.\n");
			free(cli.listen_env);
			return 2;
		}
	}
	if (optind < argc && !((strcmp(argv[optind], "rekey") == 0 ||
	                           strcmp(argv[optind], "migrate-to-etcd") == 0) &&
	                         optind + 1 == argc)) {
		(void)fprintf(stderr, "secretd: unexpected argument '%s'\nTry 'secretd --help'.\n",
		    argv[optind]);
		free(cli.listen_env);
		return 2;
	}
	if (cli.cfg.passphrase_file != NULL && cli.cfg.key_file != NULL) {
		(void)fprintf(stderr, "secretd: --passphrase-file and --key-file exclude each "
		                      "other\nTry 'secretd --help'.\n");
		free(cli.listen_env);
		return 2;
	}
	if (cli.cfg.persistent_store != NULL && strcmp(cli.cfg.persistent_store, "etcd") == 0 &&
	    (cli.cfg.etcd_endpoints == NULL || cli.cfg.passphrase_file != NULL)) {
		(void)fprintf(stderr, "secretd: --persistent-store etcd needs --etcd-endpoints and "
		                      "a key file (no passphrase mode)\nTry 'secretd --help'.\n");
		free(cli.listen_env);
		return 2;
	}
	if (optind < argc && strcmp(argv[optind], "migrate-to-etcd") == 0)
		rc = server_migrate_to_etcd(&cli.cfg);
	else if (optind < argc && strcmp(argv[optind], "rekey") == 0)
		rc = server_rekey_offline(&cli.cfg);
	else
		rc = server_run(&cli.cfg);
	free(cli.listen_env);
	return rc;
}

/*
 * secretctl_exec.c: the commands that hand secrets to other programs through the
 * environment. exec runs a command with the variables set; env prints `export` lines for a
 * shell's eval (or one JSON object with --json). Which variables: secretctl_env.c.
 *
 * exec builds a new environment array and execvp()s the command in place of secretctl: the
 * command keeps secretctl's pid, so every signal sent to it reaches the command, and the
 * caller sees the command's exit status (128+N from a shell when signal N killed it).
 * Values never go in argv. Each value is held in one buffer that is wiped before it is
 * freed; after a successful execvp the old process image, with every copy, is gone.
 *
 * Not here: talking to secretd other than through libsecretd's get and resolve.
 *
 * Thread safety: single-threaded; exec swaps environ for the duration of execvp.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <secretd.h>

#include "secretctl.h"
#include "secretctl_env.h"

extern char **environ;

const char ctl_usage_exec[] =
    "usage: secretctl exec [--secret NAME]... [--type T --path P] [--env VAR=[SECRET:]FIELD]...\n"
    "                      [--prefix P] [--storage S] -- COMMAND [ARGS]...\n"
    "\n"
    "Run COMMAND (in place of secretctl: same pid, its exit status, its signals) with the\n"
    "secrets' fields in its environment, never in argv:\n"
    "  openai     OPENAI_API_KEY, OPENAI_BASE_URL (when set)\n"
    "  ollama     OLLAMA_HOST (from api_url)\n"
    "  azure_llm  AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT\n"
    "             (https://<resource_name>.openai.azure.com), OPENAI_API_VERSION\n"
    "  --secret NAME     a secret by name; repeat for several\n"
    "  --type T          with --path P: the secret of type T that applies to path P, picked\n"
    "  --path P          as resolve does (longest scope that is a prefix of P)\n"
    "  --env VAR=FIELD   export FIELD (or azure_llm's endpoint) as VAR instead of its default\n"
    "                    name; SECRET:FIELD when several secrets have FIELD\n"
    "  --prefix P        export every field as P_FIELD (upper case) instead\n"
    "  --storage S       memory or sqlcipher, for --secret (default: either)\n"
    "Exit status: COMMAND's; 126/127 when it cannot be run; 1 or 2 when secretctl fails.\n";

const char ctl_usage_env[] =
    "usage: secretctl env [NAME]... [--secret NAME]... [--type T --path P]\n"
    "                     [--env VAR=[SECRET:]FIELD]... [--prefix P] [--storage S]\n"
    "\n"
    "Print one line `export VAR='value'` per variable that exec would set, quoted for\n"
    "POSIX shells, for eval \"$(secretctl env NAME)\". With --json: one object\n"
    "{\"status\":\"OK\",\"env\":{VAR:value,...}}. The options are exec's (secretctl exec "
    "--help).\n";

enum {
	OPT_HELP = 'h',
	OPT_SECRET = 256,
	OPT_TYPE,
	OPT_PATH,
	OPT_ENV,
	OPT_PREFIX,
	OPT_STORAGE,
};

/* Parse --env VAR=[SECRET:]FIELD in place (arg is argv's). */
static int
env_parse_spec(char *arg, struct env_spec *sp)
{
	char *eq = strchr(arg, '=');
	char *colon;

	if (eq == NULL || eq == arg || eq[1] == '\0')
		return ctl_usage_error(
		    "--env: expected VAR=FIELD or VAR=SECRET:FIELD, got '%s'", arg);
	*eq = '\0';
	if (!env_name_ok(arg, strlen(arg)))
		return ctl_usage_error("--env: '%s' is not a valid environment variable name", arg);
	sp->var = arg;
	sp->secret = NULL;
	sp->field = eq + 1;
	colon = strrchr(eq + 1, ':');
	if (colon != NULL) {
		*colon = '\0';
		sp->secret = eq + 1;
		sp->field = colon + 1;
		if (sp->secret[0] == '\0' || sp->field[0] == '\0')
			return ctl_usage_error("--env %s: expected VAR=SECRET:FIELD", arg);
	}
	return CTL_EXIT_OK;
}

/*
 * Parse exec's or env's options into o (arrays allocated for argc entries; the caller
 * frees them). with_command: exec's argv, which stops at COMMAND; env takes NAME operands.
 * *helpp is set when --help was printed.
 */
static int
env_parse(
    struct ctl *ctl, int argc, char **argv, bool with_command, struct env_opts *o, bool *helpp)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, OPT_HELP},
	    {"secret", required_argument, NULL, OPT_SECRET},
	    {"type", required_argument, NULL, OPT_TYPE},
	    {"path", required_argument, NULL, OPT_PATH},
	    {"env", required_argument, NULL, OPT_ENV},
	    {"prefix", required_argument, NULL, OPT_PREFIX},
	    {"storage", required_argument, NULL, OPT_STORAGE},
	    {NULL, 0, NULL, 0},
	};
	const char *cmd = argv[0];
	int rc;
	int c;

	o->storage = SECRETD_STORAGE_ANY;
	o->names = calloc((size_t)argc + 1, sizeof(*o->names));
	o->specs = calloc((size_t)argc + 1, sizeof(*o->specs));
	if (o->names == NULL || o->specs == NULL)
		return ctl_usage_error("out of memory");
	ctl_sub_reset(ctl, opts);
	/* exec: "+" stops at COMMAND, so that its own options stay its own even without
	 * "--"; env: "-" returns NAME operands in order as option 1. */
	while ((c = ctl_sub_getopt(ctl, argc, argv, with_command ? "+h" : "-h")) != -1) {
		switch (c) {
		case OPT_HELP:
			*helpp = true;
			return ctl_print_help(with_command ? ctl_usage_exec : ctl_usage_env);
		case 1:
		case OPT_SECRET:
			o->names[o->n_names++] = optarg;
			break;
		case OPT_TYPE:
			o->type = optarg;
			break;
		case OPT_PATH:
			o->path = optarg;
			break;
		case OPT_ENV:
			if ((rc = env_parse_spec(optarg, &o->specs[o->n_specs])) != CTL_EXIT_OK)
				return rc;
			o->n_specs++;
			break;
		case OPT_PREFIX:
			if (!env_name_ok(optarg, strlen(optarg)))
				return ctl_usage_error("%s: --prefix '%s' is not a valid variable "
				                       "name",
				    cmd, optarg);
			o->prefix = optarg;
			break;
		case OPT_STORAGE:
			if (!ctl_parse_storage(optarg, &o->storage))
				return ctl_usage_error("%s: unknown storage '%s'", cmd, optarg);
			break;
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (!with_command) {
		for (; optind < argc; optind++) /* NAMEs after "--" */
			o->names[o->n_names++] = argv[optind];
	}
	if ((o->type == NULL) != (o->path == NULL))
		return ctl_usage_error("%s: --type and --path go together", cmd);
	if (o->n_names == 0 && o->type == NULL)
		return ctl_usage_error("%s: give --secret NAME or --type T --path P", cmd);
	if (with_command && optind >= argc)
		return ctl_usage_error("%s: expected -- COMMAND [ARGS]...", cmd);
	return CTL_EXIT_OK;
}

/* Fetch the named secrets, then the resolved one, into secrets[] (n_names + 1 slots);
 * a secret met twice (same name and storage) is kept once. */
static int
env_fetch(struct ctl *ctl, const struct env_opts *o, secretd_secret **secrets, size_t *np)
{
	secretd_secret *s = NULL;
	secretd_error err;
	size_t n = 0;
	size_t i, j;
	int rc;

	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	for (i = 0; i <= o->n_names; i++) {
		bool dup = false;

		s = NULL;
		if (i < o->n_names) {
			if (secretd_get(ctl->client, o->names[i], o->storage, ctl->timeout_ms, &s,
			        &err) != SECRETD_OK)
				return ctl_out_error(ctl, &err);
		} else if (o->type != NULL) {
			if (secretd_resolve(ctl->client, o->path, o->type, ctl->timeout_ms, &s,
			        &err) != SECRETD_OK)
				return ctl_out_error(ctl, &err);
			if (s == NULL) {
				(void)fprintf(stderr, "secretctl: no %s secret applies to %s\n",
				    o->type, o->path);
				return CTL_EXIT_STATUS;
			}
		} else {
			break;
		}
		for (j = 0; j < n; j++) {
			if (strcmp(secrets[j]->name, s->name) == 0 &&
			    secrets[j]->storage == s->storage)
				dup = true;
		}
		if (dup) {
			secretd_secret_free(s);
			continue;
		}
		secrets[n++] = s;
		*np = n;
	}
	return CTL_EXIT_OK;
}

/* Parse, fetch and build: the common part of exec and env. */
static int
env_collect(
    struct ctl *ctl, int argc, char **argv, bool with_command, struct env_vars *v, bool *helpp)
{
	struct env_opts o = {.names = NULL};
	secretd_secret **secrets = NULL;
	size_t n = 0;
	size_t i;
	int rc;

	rc = env_parse(ctl, argc, argv, with_command, &o, helpp);
	if (rc != CTL_EXIT_OK || *helpp)
		goto done;
	secrets = calloc(o.n_names + 2, sizeof(*secrets));
	if (secrets == NULL) {
		rc = ctl_usage_error("out of memory");
		goto done;
	}
	if ((rc = env_fetch(ctl, &o, secrets, &n)) != CTL_EXIT_OK)
		goto done;
	rc = env_build(&o, secrets, n, v);
done:
	for (i = 0; secrets != NULL && i < n; i++)
		secretd_secret_free(secrets[i]);
	free(secrets);
	free(o.names);
	free(o.specs);
	return rc;
}

/*
 * A new environment: environ without the variables v sets, then v's entries (borrowed).
 * Caller frees the array (not the strings) with free; NULL when out of memory.
 */
static char **
env_merge(const struct env_vars *v)
{
	size_t n_env = 0;
	size_t n = 0;
	char **out;
	size_t i, j;

	while (environ != NULL && environ[n_env] != NULL)
		n_env++;
	out = calloc(n_env + v->n + 1, sizeof(*out));
	if (out == NULL)
		return NULL;
	for (i = 0; i < n_env; i++) {
		bool replaced = false;

		for (j = 0; j < v->n && !replaced; j++)
			replaced = strncmp(environ[i], v->entries[j], v->name_lens[j] + 1) == 0;
		if (!replaced)
			out[n++] = environ[i];
	}
	for (j = 0; j < v->n; j++)
		out[n++] = v->entries[j];
	out[n] = NULL;
	return out;
}

int
ctl_cmd_exec(struct ctl *ctl, int argc, char **argv)
{
	struct env_vars v = {.entries = NULL};
	char **saved = environ;
	char **env = NULL;
	bool help = false;
	int rc;

	rc = env_collect(ctl, argc, argv, true, &v, &help);
	if (rc != CTL_EXIT_OK || help)
		goto done;
	env = env_merge(&v);
	if (env == NULL) {
		rc = ctl_usage_error("out of memory");
		goto done;
	}
	secretd_client_close(ctl->client);
	ctl->client = NULL;
	(void)fflush(stdout);
	(void)fflush(stderr);
	environ = env;
	(void)execvp(argv[optind], &argv[optind]);
	rc = errno;
	environ = saved;
	(void)fprintf(stderr, "secretctl: exec: %s: %s\n", argv[optind], strerror(rc));
	rc = rc == ENOENT ? 127 : 126;
done:
	free(env);
	env_vars_free(&v);
	return rc;
}

/* Append s (n bytes) to buf at *posp. */
static void
put(char *buf, size_t *posp, const char *s, size_t n)
{
	memcpy(buf + *posp, s, n);
	*posp += n;
}

/* Write all of buf to fd 1; false on error. */
static bool
write_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(STDOUT_FILENO, buf, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		buf += w;
		len -= (size_t)w;
	}
	return true;
}

/*
 * Print v as `export VAR='value'` lines: inside single quotes nothing is special to a POSIX
 * shell but the quote itself, written '\''. The text is built in one buffer, written with
 * write(2) (no stdio copy) and wiped.
 */
static int
env_print_shell(const struct env_vars *v)
{
	size_t size = 1;
	size_t pos = 0;
	char *buf;
	size_t i, k;
	int rc = CTL_EXIT_OK;

	for (i = 0; i < v->n; i++)
		size += strlen("export ") + v->sizes[i] * 4 + 3;
	buf = malloc(size);
	if (buf == NULL)
		return ctl_usage_error("out of memory");
	for (i = 0; i < v->n; i++) {
		const char *e = v->entries[i];
		size_t nl = v->name_lens[i];

		put(buf, &pos, "export ", strlen("export "));
		put(buf, &pos, e, nl + 1);
		put(buf, &pos, "'", 1);
		for (k = nl + 1; e[k] != '\0'; k++) {
			if (e[k] == '\'')
				put(buf, &pos, "'\\''", 4);
			else
				put(buf, &pos, &e[k], 1);
		}
		put(buf, &pos, "'\n", 2);
	}
	(void)fflush(stdout);
	if (!write_all(buf, pos)) {
		(void)fprintf(stderr, "secretctl: cannot write to stdout: %s\n", strerror(errno));
		rc = CTL_EXIT_STATUS;
	}
	ctl_wipe_free(buf, size);
	return rc;
}

int
ctl_cmd_env(struct ctl *ctl, int argc, char **argv)
{
	struct env_vars v = {.entries = NULL};
	const char **names = NULL;
	const char **values = NULL;
	size_t *lens = NULL;
	bool help = false;
	size_t i;
	int rc;

	rc = env_collect(ctl, argc, argv, false, &v, &help);
	if (rc != CTL_EXIT_OK || help)
		goto done;
	if (!ctl->json) {
		rc = env_print_shell(&v);
		goto done;
	}
	names = calloc(v.n + 1, sizeof(*names));
	values = calloc(v.n + 1, sizeof(*values));
	lens = calloc(v.n + 1, sizeof(*lens));
	if (names == NULL || values == NULL || lens == NULL) {
		rc = ctl_usage_error("out of memory");
		goto done;
	}
	for (i = 0; i < v.n; i++) {
		v.entries[i][v.name_lens[i]] = '\0'; /* split NAME=value in place */
		names[i] = v.entries[i];
		values[i] = v.entries[i] + v.name_lens[i] + 1;
		lens[i] = v.sizes[i] - v.name_lens[i] - 2;
	}
	rc = ctl_out_env(names, values, lens, v.n);
done:
	free(names);
	free(values);
	free(lens);
	env_vars_free(&v);
	return rc;
}

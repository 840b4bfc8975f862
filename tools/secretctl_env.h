/*
 * secretctl_env.h: what exec and env (secretctl_exec.c) share with the variables' builder
 * (secretctl_env.c): the options they were given and the variables to set.
 *
 * Thread safety: single-threaded, as secretctl is.
 */
#ifndef SECRETD_TOOLS_SECRETCTL_ENV_H
#define SECRETD_TOOLS_SECRETCTL_ENV_H

#include <stdbool.h>
#include <stddef.h>

#include <secretd.h>

/* One --env VAR=[SECRET:]FIELD; the strings point into argv. */
struct env_spec {
	const char *var;
	const char *secret; /* NULL: whichever given secret has the field */
	const char *field;
};

/* What exec and env were asked for. Arrays are sized for argc entries. */
struct env_opts {
	const char **names; /* --secret and env's operands */
	size_t n_names;
	struct env_spec *specs;
	size_t n_specs;
	const char *type;
	const char *path;
	const char *prefix;
	secretd_storage storage;
};

/* The variables to set: "VAR=value" strings, each wiped when freed. */
struct env_vars {
	char **entries;
	size_t *sizes;     /* allocation size of each entry */
	size_t *name_lens; /* offset of the '=' */
	const char **from; /* name of the secret it came from (borrowed from the secrets) */
	size_t n;
	size_t cap;
};

/* Wipe and free every entry of v, and its arrays; v is then empty. */
void env_vars_free(struct env_vars *v);

/* A portable environment variable name: [A-Za-z_][A-Za-z0-9_]*. */
bool env_name_ok(const char *s, size_t len);

/* Work out every variable from the secrets (borrowed; n of them, in the order given) into
 * v (caller frees with env_vars_free): explicit --env specs first, then each secret's
 * defaults (or --prefix P_FIELD) for the keys no spec took. Returns a CTL_EXIT_* status,
 * having printed why on failure. */
int env_build(
    const struct env_opts *o, secretd_secret *const *secrets, size_t n, struct env_vars *v);

#endif

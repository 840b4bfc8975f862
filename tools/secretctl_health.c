/*
 * secretctl_health.c: `secretctl health`, a node's readiness: serving, writable (a
 * persistent write can commit: etcd has quorum) and how far its mirror of etcd is behind.
 * Exit status 0 when serving and writable, 3 when serving read-only, 1 when the call fails:
 * usable as a readiness probe.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>

#include "secretctl.h"

const char ctl_usage_health[] =
    "usage: secretctl health\n"
    "Ask the node for its readiness: serving, writable (persistent writes can commit;\n"
    "in a cluster, etcd has quorum), the store revision its mirror has applied and how\n"
    "long it has been behind etcd. Temporary secrets are counted for this node only.\n"
    "Exit status: 0 ready, 3 serving but not writable, 1 the call failed.\n";

int
ctl_cmd_health(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	secretd_health_info h;
	secretd_error err;
	int rc;
	int c;

	ctl_sub_reset(ctl, opts);
	while ((c = ctl_sub_getopt(ctl, argc, argv, "h")) != -1) {
		if (c == 'h')
			return ctl_print_help(ctl_usage_health);
		return CTL_EXIT_USAGE;
	}
	if (optind != argc)
		return ctl_usage_error("health: unexpected operand '%s'", argv[optind]);
	if ((rc = ctl_connect(ctl)) != CTL_EXIT_OK)
		return rc;
	if (secretd_health(ctl->client, ctl->timeout_ms, &h, &err) != SECRETD_OK)
		return ctl_out_error(ctl, &err);
	if (ctl->json) {
		json_t *o = json_pack("{s:s,s:b,s:b,s:s,s:I,s:I,s:I,s:I,s:I,s:s}", "status", "OK",
		    "serving", h.serving, "writable", h.writable, "persistent_store",
		    h.persistent_store, "store_rev", (json_int_t)h.store_rev, "latest_rev",
		    (json_int_t)h.latest_rev, "lag_ms", (json_int_t)h.lag_ms, "persistent_count",
		    (json_int_t)h.persistent_count, "temporary_count",
		    (json_int_t)h.temporary_count, "detail", h.detail);

		if (o == NULL || json_dumpf(o, stdout, JSON_COMPACT) != 0) {
			json_decref(o);
			return CTL_EXIT_STATUS;
		}
		json_decref(o);
		(void)putchar('\n');
	} else {
		(void)printf(
		    "serving: %s\nwritable: %s\npersistent store: %s\nstore revision: %llu "
		    "(latest %llu, behind for %llu ms)\npersistent secrets: %llu\n"
		    "temporary secrets (this node only): %llu\n",
		    h.serving ? "yes" : "no", h.writable ? "yes" : "no", h.persistent_store,
		    h.store_rev, h.latest_rev, h.lag_ms, h.persistent_count, h.temporary_count);
		if (h.detail[0] != '\0')
			(void)printf("detail: %s\n", h.detail);
	}
	return h.serving && h.writable ? CTL_EXIT_OK : 3;
}

/*
 * rekey_crash.c: `secretd rekey` that crashes after one step, for test_rekey.c. The
 * production secretd has no crash hook: this program runs the same offline rotation
 * (server_rekey_offline) with the configuration's rekey_step set, and ends the process with
 * status 70 right after the step it names, as a power cut there would.
 *
 * Usage: rekey_crash DATA_DIR STEP   (STEP: "new-key" or "rekey", see keys.h)
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

static const char *crash_step;

static void
crash_after(const char *step)
{
	if (strcmp(step, crash_step) == 0)
		_exit(70);
}

int
main(int argc, char **argv)
{
	struct server_config cfg;

	if (argc != 3) {
		(void)fprintf(stderr, "usage: rekey_crash DATA_DIR STEP\n");
		return 2;
	}
	server_config_default(&cfg);
	cfg.data_dir = argv[1];
	crash_step = argv[2];
	cfg.rekey_step = crash_after;
	return server_rekey_offline(&cfg);
}

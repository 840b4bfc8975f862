/*
 * test_store_keyfile.c: the key file (keyfile.c): made on first use (0600, 64 hex digits
 * and a newline, no temporary file left), read back in either case, refused when others
 * may read it, when it is malformed, or when it is a symbolic link.
 */
#include "store_fixture.h"

static void
test_keyfile(void)
{
	static const char lower[] =
	    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
	static const char upper[] =
	    "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";
	struct fixture fx;
	char path[160];
	char link_path[160];
	uint8_t key[STORE_KEY_LEN];
	uint8_t again[STORE_KEY_LEN];
	bool created = false;
	struct stat sb;

	if (!fx_setup(&fx, &store_memory_ops)) {
		CHECK(false);
		return;
	}
	snprintf(path, sizeof(path), "%s/key", fx.dir);
	CHECK_STATUS(store_keyfile_load(path, false, key, &created), STORE_NOT_FOUND);
	CHECK_STATUS(store_keyfile_load(path, true, key, &created), STORE_OK);
	CHECK(created);
	CHECK_STATUS(stat(path, &sb), 0);
	CHECK_STATUS(sb.st_mode & 0777, 0600);
	CHECK_STATUS(sb.st_size, 65);
	CHECK_STATUS(dir_entries(fx.dir), 1); /* no temporary file left */
	{
		uint8_t *buf = NULL;
		size_t len = 0;
		bool hex_ok = slurp(path, &buf, &len) && len == 65 && buf[64] == '\n';

		for (size_t i = 0; hex_ok && i < 64; i++)
			hex_ok =
			    (buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f');
		CHECK(hex_ok);
		free(buf);
	}
	CHECK_STATUS(store_keyfile_load(path, true, again, &created), STORE_OK);
	CHECK(!created);
	CHECK(memcmp(key, again, STORE_KEY_LEN) == 0);
	/* Refused when group or others may read it. */
	CHECK_STATUS(chmod(path, 0640), 0);
	CHECK_STATUS(store_keyfile_load(path, false, again, NULL), STORE_PERMISSION);
	CHECK_STATUS(chmod(path, 0604), 0);
	CHECK_STATUS(store_keyfile_load(path, true, again, NULL), STORE_PERMISSION);
	/* Content: exact, either case, optional newline. */
	CHECK(write_file(path, lower, strlen(lower), 0600));
	CHECK_STATUS(store_keyfile_load(path, false, key, NULL), STORE_OK);
	CHECK(key[0] == 0 && key[10] == 10 && key[31] == 31);
	CHECK(write_file(path, upper, strlen(upper), 0600));
	CHECK_STATUS(store_keyfile_load(path, false, again, NULL), STORE_OK);
	CHECK(memcmp(key, again, STORE_KEY_LEN) == 0);
	CHECK(write_file(path, lower, 63, 0600));
	CHECK_STATUS(store_keyfile_load(path, false, key, NULL), STORE_INVALID);
	CHECK(write_file(
	    path, "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", 65, 0600));
	CHECK_STATUS(store_keyfile_load(path, false, key, NULL), STORE_INVALID);
	CHECK(write_file(path,
	    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n\n", 66, 0600));
	CHECK_STATUS(store_keyfile_load(path, true, key, NULL), STORE_INVALID);
	CHECK(write_file(path, "", 0, 0600));
	CHECK_STATUS(store_keyfile_load(path, true, key, NULL), STORE_INVALID);
	/* A symbolic link is not followed. */
	CHECK(write_file(path, lower, strlen(lower), 0600));
	snprintf(link_path, sizeof(link_path), "%s/link", fx.dir);
	CHECK_STATUS(symlink(path, link_path), 0);
	CHECK_STATUS(store_keyfile_load(link_path, false, key, NULL), STORE_PERMISSION);
	CHECK_STATUS(store_keyfile_load(NULL, false, key, NULL), STORE_INVALID);
	fx_teardown(&fx);
}

int
main(void)
{
	test_keyfile();
	return check_report();
}

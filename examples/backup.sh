#!/bin/sh
# backup.sh: copy secretd's database while secretd runs.
#
#   backup.sh [DATA_DIR] DEST        (as the secretd user: sudo -u secretd backup.sh ...)
#
# A plain cp of secrets.db is not a backup: the last commits live in secrets.db-wal until a
# checkpoint, and a copy taken during one is torn. This opens the database with the
# sqlcipher shell (a reader; secretd keeps writing) and exports one consistent snapshot into
# DEST with sqlcipher_export, encrypted under the same key, with the same page size and
# schema version, so that secretd opens DEST as it is. Restore: stop secretd, put DEST in
# place as DATA_DIR/secrets.db (mode 0600, secretd's owner), delete secrets.db-wal and
# secrets.db-shm, start secretd.
#
# DEST is useless without DATA_DIR/secretd.key: back the key up too, but keep it apart from
# the database copies. The key is passed to sqlcipher on standard input (printf is a shell
# builtin), never in argv.
set -eu
if [ $# -eq 1 ]; then
	data=/var/lib/secretd dest=$1
elif [ $# -eq 2 ]; then
	data=$1 dest=$2
else
	echo "usage: backup.sh [DATA_DIR] DEST" >&2
	exit 2
fi
[ ! -e "$dest" ] || { echo "backup.sh: $dest exists" >&2; exit 1; }
case $dest in *\'*) echo "backup.sh: no quotes in DEST, please" >&2; exit 2 ;; esac
umask 077
key=$(cat "$data/secretd.key")

# sql STATEMENTS: run them on the live database, keyed as secretd keys it.
sql() {
	printf 'PRAGMA key = "x'\''%s'\''";\nPRAGMA cipher_page_size = 4096;\n%s\n' "$key" "$1" |
	    sqlcipher -batch -bail "$data/secrets.db"
}

version=$(sql 'PRAGMA user_version;')
sql "PRAGMA cipher_default_page_size = 4096;
ATTACH DATABASE '$dest' AS backup KEY \"x'$key'\";
SELECT sqlcipher_export('backup');
PRAGMA backup.user_version = $version;
DETACH DATABASE backup;" >/dev/null
echo "backup.sh: $data/secrets.db -> $dest (schema version $version)"

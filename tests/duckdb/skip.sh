#!/bin/sh
# skip.sh REASON: a DuckDB test that cannot run here reports SKIP (77) with its reason.
echo "SKIP: $1"
exit 77

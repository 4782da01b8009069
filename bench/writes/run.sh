#!/usr/bin/env bash
# The write workloads w1_product_create and w2_products_upsert against PostGraphile, Stratix
# and raw SQL, on the harness's database, one after another (bench/README.md, "Writes").
#
#   bench/run.sh --db-only                      # the database (prints its DATABASE_URL)
#   # start PostGraphile on 127.0.0.1:5678 and `target/release/stratix serve` on :8080 as
#   # bench/run.sh starts them; write their pids and a service_role token to $STATE
#   STATE=/tmp/wstate bench/writes/run.sh OUT   # the table in OUT/table.md
#
# $STATE holds pgl.pid, stratix.pid and token. WAIT_QUIET (default 240 s) bounds the
# harness's quiet wait before each run.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
P="${PEER_DIR:-$HERE/../../../shared/peer}"
Q="$HERE/../queries"
STATE="${STATE:?set STATE to the folder with pgl.pid, stratix.pid and token}"
export OUT="${1:?give an output folder}" WAIT_QUIET="${WAIT_QUIET:-240}"
rm -rf "$OUT"; mkdir -p "$OUT"
date -u '+%F %T UTC' > "$OUT/date.txt"
for w in w1_product_create w2_products_upsert; do
  "$HERE/drive.sh" http postgraphile http://127.0.0.1:5678/graphql "$Q/postgraphile-stratix" "$w" 16 10 "$(cat "$STATE/pgl.pid")"
done
for w in w1_product_create w2_products_upsert; do
  PEER_AUTH="Bearer $(cat "$STATE/token")" "$HERE/drive.sh" http stratix http://127.0.0.1:8080/graphql "$Q/stratix" "$w" 16 10 "$(cat "$STATE/stratix.pid")"
done
for w in w1_product_create w2_products_upsert; do
  "$HERE/drive.sh" sql sql "$Q/sql/$w.sql" "$w" 16 10
done
date -u '+%F %T UTC' >> "$OUT/date.txt"
python3 "$P/lib/bench.py" table "$OUT/results.jsonl" "$OUT/info.jsonl" --baseline sql > "$OUT/table.md"

#!/usr/bin/env bash
# The read-API benchmark: Stratix next to PostGraphile 5 and the raw SQL, on Stratix's own
# schema, with the peer harness (PEER_DIR, default /work/shared/peer; called, never copied).
#
#   bench/run.sh                                   # workloads a b c, c = 1 16 64, 15 s each
#   bench/run.sh --duration 5 --concurrency 16 --workloads a      # quick look
#   bench/run.sh --rounds 1 --wait-quiet 180       # what bench/README.md reports
#   bench/run.sh --workloads w1,w2 --concurrency 16 --duration 10   # the writes (README, "Writes"):
#                                                  # needs a harness with --workloads-dir
#
# Every argument is passed on to the harness (--concurrency, --duration, --rounds,
# --wait-quiet, --workloads, --fresh-db, --keep-db, --out, ...; see `$PEER_DIR/run.sh --help`).
#
# What it does:
#   1. cargo build --release (from the repository root, whatever the current directory);
#   2. the harness builds (once per migrations/seed version; cached under /tmp/peer-cache) a
#      PostgreSQL database with `stratix migrate up` + bench/stratix-seed.sql; the data-dir key
#      holds a hash of migration/src/*.rs, so a migration change gets a new database;
#   3. loads, one after another on the same database: postgraphile (queries adapted to this
#      schema: bench/queries/postgraphile-stratix/), stratix (`stratix serve`, as the harness's
#      superuser DATABASE_URL, with a service_role token minted for the run), sql (pgbench).
#
# Env: PEER_DIR (the harness), BENCH_STRATIX_LISTEN (default 127.0.0.1:8080), JWT_SECRET (default:
# a random one per run; the token is minted with it and the server verifies with it),
# BENCH_SKIP_BUILD=1 (use target/release/stratix as it is: e.g. while the tree does not build).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEER_DIR="${PEER_DIR:-/work/shared/peer}"
LISTEN="${BENCH_STRATIX_LISTEN:-127.0.0.1:8080}"
[ -x "$PEER_DIR/run.sh" ] || { echo "bench/run.sh: no harness at $PEER_DIR (set PEER_DIR)" >&2; exit 1; }

cd "$ROOT"   # the harness runs --schema-cmd in the current directory

# The harness reads PEER_SEED twice: run.sh as the seed file (like --seed), and its wrk script
# (lib/graphql.lua) as the numeric random seed of the request sequence, where a path makes wrk
# fail ("bad argument #1 to 'randomseed'"). The seed file is given with --seed below, so a
# non-numeric PEER_SEED left in the environment is dropped.
if [ -n "${PEER_SEED:-}" ] && ! [[ "$PEER_SEED" =~ ^[0-9]+$ ]]; then unset PEER_SEED; fi

# The write workloads w1_product_create and w2_products_upsert (bench/README.md, "Writes") are
# defined here: their GraphQL and params in bench/queries/<dialect>/, their pgbench scripts in
# bench/queries/sql/. The harness takes its workload list from its own queries/sql/ only and
# replays fixed request bodies, so it cannot run them yet; a harness with the change proposed
# in the README (--workloads-dir DIR and the {{unique}} token) is given bench/queries, and runs
# them next to the reads. Until then, asking for them stops here with the reason.
WORKLOADS_DIR=()
if "$PEER_DIR/run.sh" --help 2>/dev/null | grep -q -- '--workloads-dir'; then
  WORKLOADS_DIR=(--workloads-dir bench/queries)
else
  prev=""
  for arg in "$@" ${PEER_WORKLOADS:+--workloads "$PEER_WORKLOADS"}; do
    if [ "$prev" = --workloads ]; then
      for tok in ${arg//,/ }; do
        if ! compgen -G "$PEER_DIR/queries/sql/${tok}*.sql" >/dev/null && compgen -G "bench/queries/sql/${tok}*.sql" >/dev/null; then
          echo "bench/run.sh: workload '$tok' is one of Stratix's write workloads (bench/queries/sql/), which the harness at $PEER_DIR cannot run yet: it takes workloads from its own queries/sql/ only and has no per-request unique values; see bench/README.md, \"Writes\"" >&2
          exit 2
        fi
      done
    fi
    prev=$arg
  done
fi

if [ "${BENCH_SKIP_BUILD:-0}" = 1 ]; then
  [ -x target/release/stratix ] || { echo "bench/run.sh: BENCH_SKIP_BUILD=1 but no target/release/stratix" >&2; exit 1; }
  echo "bench/run.sh: BENCH_SKIP_BUILD=1: using target/release/stratix as built ($(date -r target/release/stratix -u +%FT%TZ))" >&2
else
  cargo build --release
fi

# The migrations define the database: their hash goes into the harness's data-dir key.
SCHEMA_KEY="$(cat migration/src/*.rs | sha256sum | cut -c1-16)"

# A service_role token for the run: the harness sends it as the Authorization header (checks
# and wrk). The secret is throwaway unless JWT_SECRET is set.
JWT_SECRET="${JWT_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
STRATIX_ENCRYPTION_KEY="${STRATIX_ENCRYPTION_KEY:-$(head -c 32 /dev/urandom | base64)}"
TOKEN="$(JWT_SECRET="$JWT_SECRET" target/release/stratix token --sub bench --role service_role --ttl 7d)"

exec "$PEER_DIR/run.sh" \
  --schema-cmd 'target/release/stratix migrate up' \
  --schema-key "$SCHEMA_KEY" \
  --seed bench/stratix-seed.sql \
  --target postgraphile --queries bench/queries/postgraphile-stratix \
  --target stratix --url "http://$LISTEN/graphql" --queries bench/queries/stratix \
    --cmd "env JWT_SECRET=$JWT_SECRET STRATIX_ENCRYPTION_KEY=$STRATIX_ENCRYPTION_KEY STRATIX_LISTEN=$LISTEN target/release/stratix serve" \
    --auth "Bearer $TOKEN" \
  --target sql \
  "${WORKLOADS_DIR[@]}" \
  "$@"

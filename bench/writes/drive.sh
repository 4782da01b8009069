#!/usr/bin/env bash
# One write workload against one running target, by the peer harness's procedure (check 3
# rows, warm-up 3 s, VACUUM + CHECKPOINT, quiet wait, load, check 1 row) with its own tools
# (lib/bench.py bodies/check/snap/rss-sampler/record-wrk/record-pgbench) and wrk with
# bench/writes/unique.lua. bench/README.md, "Writes", says why the harness cannot run these yet.
#   drive.sh http NAME URL QDIR WORKLOAD CONC DURATION SERVER_PID
#   drive.sh sql  NAME SCRIPT WORKLOAD CONC DURATION
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
P="${PEER_DIR:-$HERE/../../../shared/peer}"
B=(python3 $P/lib/bench.py)
OUT=${OUT:?}
mkdir -p "$OUT"/{params,bodies,runs}
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 55450 -U postgres -d peer)
PM=$(for f in /tmp/peer-cache/pgdata-*/pg/postmaster.pid; do [ "$(sed -n 4p $f)" = 55450 ] && head -1 $f; done)
kind=$1; shift
if [ "$kind" = http ]; then
  name=$1 url=$2 qdir=$3 w=$4 c=$5 dur=$6 spid=$7
  params="$OUT/params/$name.$w.jsonl"; bodies="$OUT/bodies/$name.$w.jsonl"
  "${PSQL[@]}" -At -f "$qdir/$w.params.sql" > "$params"
  "${B[@]}" bodies "$qdir/$w.graphql" "$params" "$bodies" >/dev/null
  chk="$OUT/bodies/$name.$w.check.jsonl"
  python3 - "$bodies" "$chk" <<'PY'
import sys, time
src, dst = sys.argv[1:3]
with open(src) as f, open(dst, "w") as o:
    for i, l in enumerate(f):
        if i >= 3: break
        o.write(l.replace("{{unique}}", "check-%d-%d" % (time.time_ns(), i)))
PY
  cres=$("${B[@]}" check "$url" "$chk" 3 --target "$name" --workload "$w") || { echo "CHECK FAILED: $cres"; exit 1; }
  echo "$cres" >> "$OUT/info.jsonl"; echo "check: $cres" >&2
  cbytes=$(python3 -c "import json,sys; print(json.loads(sys.argv[1]).get('bytes', 0))" "$cres")
  PEER_NONCE="warm$(date +%s%N)" PEER_BODIES="$bodies" wrk -t1 -c16 -d3s --timeout 10s -s "$HERE/unique.lua" "$url" > "$OUT/runs/$name.$w.warmup.txt" 2>&1
  run="$OUT/runs/$name.$w.c$c"
  "${PSQL[@]}" -c "VACUUM products" -c "VACUUM change_events" -c "CHECKPOINT"
  echo "quiet: $("${B[@]}" quiet --max-busy 10 --timeout ${WAIT_QUIET:-180})% busy" >&2
  s0=$("${B[@]}" snap --server "$spid" --db "$PM" --shell $$)
  "${B[@]}" rss-sampler "$spid" "$run.rss" & sp=$!
  PEER_NONCE="$(date +%s%N)" PEER_BODIES="$bodies" wrk -t1 -c"$c" -d"${dur}s" --timeout 10s -s "$HERE/unique.lua" "$url" > "$run.wrk.txt" 2>&1 &
  wait $!
  s1=$("${B[@]}" snap --server "$spid" --db "$PM" --shell $$)
  kill -TERM $sp; wait $sp || true
  read -r -a d <<< "$(paste -d' ' <(tr ' ' '\n' <<< "$s1") <(tr ' ' '\n' <<< "$s0") | awk '{printf "%d ", $1 - $2}')"
  "${B[@]}" record-wrk --target "$name" --workload "$w" --conc "$c" --round 1 --wrk-out "$run.wrk.txt" \
    --srv-ticks "${d[0]}" --db-ticks "${d[1]}" --gen-ticks "${d[2]}" --sys-busy "${d[3]}" --sys-total "${d[4]}" \
    --check-bytes "$cbytes" --rss-file "$run.rss" | tee -a "$OUT/results.jsonl"
  python3 - "$bodies" "$chk" <<'PY'
import sys, time
src, dst = sys.argv[1:3]
with open(src) as f, open(dst, "w") as o:
    o.write(f.readline().replace("{{unique}}", "check-%d-after" % time.time_ns()))
PY
  "${B[@]}" check "$url" "$chk" 1 --target "$name" --workload "$w" >/dev/null || echo "CHECK AFTER LOAD FAILED" >&2
else
  name=$1 script=$2 w=$3 c=$4 dur=$5
  timeout 40 pgbench -n -h 127.0.0.1 -p 55450 -U postgres -M prepared -c 16 -j 2 -T 3 -f "$script" peer > "$OUT/runs/$name.$w.warmup.txt" 2>&1
  run="$OUT/runs/$name.$w.c$c"; rm -rf "$run.log"; mkdir -p "$run.log"
  "${PSQL[@]}" -c "VACUUM products" -c "VACUUM change_events" -c "CHECKPOINT"
  echo "quiet: $("${B[@]}" quiet --max-busy 10 --timeout ${WAIT_QUIET:-180})% busy" >&2
  s0=$("${B[@]}" snap --db "$PM" --shell $$)
  pgbench -n -h 127.0.0.1 -p 55450 -U postgres -M prepared -c "$c" -j 2 -T "$dur" -l --log-prefix="$run.log/tx" -f "$script" peer > "$run.pgbench.txt" 2>&1 &
  wait $!
  s1=$("${B[@]}" snap --db "$PM" --shell $$)
  read -r -a d <<< "$(paste -d' ' <(tr ' ' '\n' <<< "$s1") <(tr ' ' '\n' <<< "$s0") | awk '{printf "%d ", $1 - $2}')"
  "${B[@]}" record-pgbench --target "$name" --workload "$w" --conc "$c" --round 1 --pgbench-out "$run.pgbench.txt" \
    --log-prefix "$run.log/tx" --db-ticks "${d[1]}" --gen-ticks "${d[2]}" --sys-busy "${d[3]}" --sys-total "${d[4]}" | tee -a "$OUT/results.jsonl"
  rm -rf "$run.log"
fi

#!/usr/bin/env bash
# Latency under a nonce flood (red-team finding 9, SPEC §16): the median
# latency of a cached OCSP GET and of an RA GET (`GET
# /api/v1/certificates/{serial}` with the development officer token), each
# measured by a paced probe (bench/probe.lua: one request every 5 ms on one
# connection), first with the server otherwise idle, then while wrk floods
# it with POSTs of nonce requests (bench/flood.lua), all on 127.0.0.1.
# Idle and flood alternate, RUNS times, so that load from other work falls
# on both alike. The requirement: medians under flood at most 2x idle.
#
#   bench/ocsp-flood.sh
#   SERVERS="before=/path/to/old/eidca:/path/to/old/eidca.toml after=target/release/eidca:ca-config/eidca.toml" \
#     bench/ocsp-flood.sh     # several builds side by side, interleaved
#
# Environment:
#   BENCH_DIR   work directory (default /tmp/eidca-bench), shared with
#               bench/ocsp-load.sh: the store and requests are made once
#   COUNT       certificates in the store (default 100000)
#   RUNS        idle/flood pairs per server (default 5)
#   DURATION    seconds per measurement (default 8)
#   FLOOD_THREADS, FLOOD_CONNECTIONS   wrk -t / -c of the flood (default 1 / 16)
#   PROBE_INTERVAL_MS   pause between two probe requests (default 5)
#   SERVERS     label=binary:config ... (default: this checkout's release
#               build with ca-config/eidca.toml); each gets its own copy of
#               the store
#
# Needs wrk and openssl; builds the release binary and examples/fill_store.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BENCH_DIR=${BENCH_DIR:-/tmp/eidca-bench}
COUNT=${COUNT:-100000}
RUNS=${RUNS:-5}
DURATION=${DURATION:-8}
FLOOD_THREADS=${FLOOD_THREADS:-1}
FLOOD_CONNECTIONS=${FLOOD_CONNECTIONS:-16}
export PROBE_INTERVAL_MS=${PROBE_INTERVAL_MS:-5}
SAMPLE=1000
TOKEN=dev-officer-token
FIRST_PORT=18090
export EIDCA_BENCH_DIR=$REPO/bench

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

nice cargo build --release --locked --bin eidca --example fill_store
BIN=$REPO/target/release
KEYS=$REPO/keys-dev
SERVERS=${SERVERS:-"eidca=$BIN/eidca:$REPO/ca-config/eidca.toml"}
mkdir -p "$BENCH_DIR"

# The store and the requests (see bench/ocsp-fixtures.sh).
source "$REPO/bench/ocsp-fixtures.sh"
SERIAL=$(head -1 "$BENCH_DIR/sample.txt")
OCSP_PATH=$(head -1 "$BENCH_DIR/get.txt")

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

# Every server on its own copy of the store and its own port.
declare -a LABELS URLS
port=$FIRST_PORT
for server in $SERVERS; do
  label=${server%%=*}
  rest=${server#*=}
  binary=${rest%%:*}
  config=${rest#*:}
  data=$BENCH_DIR/flood-data-$label
  rm -rf "$data" && cp -a "$BENCH_DIR/data" "$data"
  RUST_LOG=warn "$binary" --config "$config" --data "$data" serve --listen 127.0.0.1:$port \
    2>"$BENCH_DIR/flood-$label.log" &
  pids+=($!)
  LABELS+=("$label")
  URLS+=("http://127.0.0.1:$port")
  port=$((port + 1))
done
for url in "${URLS[@]}"; do
  for _ in $(seq 100); do
    curl -sf -o /dev/null --max-time 2 "$url$OCSP_PATH" && break
    sleep 0.1
  done
done

cd "$EIDCA_BENCH_DIR"
# One measurement: both probes side by side for DURATION seconds; prints
# "<cached p50> <p99> <errors> <RA p50> <p99> <errors>" (µs). The OCSP
# probe's line goes through a file: a background job cannot set a variable.
probe() {
  local url=$1 file=$BENCH_DIR/probe.out
  wrk -t1 -c1 -d"${DURATION}s" -s probe.lua "$url$OCSP_PATH" | grep '^RESULT' >"$file" &
  local ocsp_pid=$!
  local ra
  ra=$(wrk -t1 -c1 -d"${DURATION}s" -s probe.lua "$url/api/v1/certificates/$SERIAL" -- "$TOKEN" |
    grep '^RESULT')
  wait $ocsp_pid
  # Fields: RESULT req/s p50 p99 errors requests.
  echo "$(awk '{ print $3, $4, $5 }' "$file") $(echo "$ra" | awk '{ print $3, $4, $5 }')"
}

results=$BENCH_DIR/flood-results.txt
: >"$results"
# Warm-up: caches, connections, the store's pages.
for url in "${URLS[@]}"; do
  wrk -t1 -c4 -d2s -s get.lua "$url/" -- "$BENCH_DIR/get.txt" >/dev/null
  probe "$url" >/dev/null
done
for run in $(seq "$RUNS"); do
  for i in "${!URLS[@]}"; do
    url=${URLS[$i]}
    idle=$(probe "$url")
    # The flood starts a second before the probes and ends a second after.
    wrk -t"$FLOOD_THREADS" -c"$FLOOD_CONNECTIONS" -d"$((DURATION + 2))s" -s flood.lua "$url/ocsp" \
      -- "$BENCH_DIR/post-nonce.txt" >"$BENCH_DIR/flood.out" &
    flood_pid=$!
    sleep 1
    flooded=$(probe "$url")
    wait $flood_pid
    # Fields: RESULT req/s p50 p99 errors requests, then TRYLATER n.
    flood=$(awk '/^RESULT/ { printf "%s %s %s ", $2, $5, $6 } /^TRYLATER/ { printf "%s", $2 }' \
      "$BENCH_DIR/flood.out")
    echo "${LABELS[$i]} $run $idle $flooded $flood" >>"$results"
  done
done

# A result line: label run; idle: cached p50 p99 errors, RA p50 p99
# errors ($3-$8); under flood: the same ($9-$14); the flood: answers/s,
# errors, answers, tryLater answers ($15-$18).
echo "$RUNS idle/flood pairs of ${DURATION}s per server, interleaved; probes: one request per" \
  "${PROBE_INTERVAL_MS} ms each; flood: wrk -t$FLOOD_THREADS -c$FLOOD_CONNECTIONS of nonce POSTs;" \
  "$COUNT certificates; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| server | run | cached GET p50 µs: idle | flood | RA GET p50 µs: idle | flood | p99 µs cached, idle / flood | p99 µs RA, idle / flood | probe errors | flood answers/s | of them tryLater |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk '{
  printf "| %s | %s | %d | %d | %d | %d | %d / %d | %d / %d | %d | %d | %.0f %% |\n",
    $1, $2, $3, $9, $6, $12, $4, $10, $7, $13, $5 + $8 + $11 + $14, $15,
    100 * $18 / ($17 > 0 ? $17 : 1)
}' "$results"
echo
echo "| server | median cached GET p50: idle → flood | ratio | median RA GET p50: idle → flood | ratio |"
echo "|---|---:|---:|---:|---:|"
median() {
  awk -v l="$1" -v f="$2" '$1 == l { print $f }' "$results" | sort -n |
    awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
for label in "${LABELS[@]}"; do
  awk -v l="$label" -v oi="$(median "$label" 3)" -v of="$(median "$label" 9)" \
    -v ri="$(median "$label" 6)" -v rf="$(median "$label" 12)" 'BEGIN {
    printf "| %s | %d → %d µs | %.2f× | %d → %d µs | %.2f× |\n", l, oi, of, of / oi, ri, rf, rf / ri }'
done

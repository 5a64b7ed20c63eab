#!/usr/bin/env bash
# OCSP load benchmark: eidca's responder against a trivial fixed-body
# axum handler (the ceiling) and `openssl ocsp -index` (the peer), all on
# 127.0.0.1, with wrk sharing the machine.
#
#   bench/ocsp-load.sh            # everything; results as a Markdown table
#
# Environment:
#   BENCH_DIR   work directory (default /tmp/eidca-bench); the store is kept
#               between runs (delete the directory to refill it)
#   COUNT       certificates in the store (default 100000)
#   DURATION    seconds per run (default 10); RUNS runs per figure (default 3)
#   THREADS, CONNECTIONS   wrk -t / -c (default 2 / 16)
#
# Needs wrk (Debian: apt-get install wrk) and openssl. Builds the release
# binary and the examples fill_store and fixed_body.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BENCH_DIR=${BENCH_DIR:-/tmp/eidca-bench}
COUNT=${COUNT:-100000}
DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-16}
SAMPLE=1000
EIDCA_PORT=18080
FIXED_PORT=18081
OPENSSL_PORT=18082
export EIDCA_BENCH_DIR=$REPO/bench

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

nice cargo build --release --locked --bin eidca --example fill_store --example fixed_body
BIN=$REPO/target/release
KEYS=$REPO/keys-dev
mkdir -p "$BENCH_DIR"

# 1.-2. The store and the requests (shared with bench/ocsp-flood.sh).
source "$REPO/bench/ocsp-fixtures.sh"

# 3. The three servers.
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
"$BIN/eidca" --config ca-config/eidca.toml --data "$BENCH_DIR/data" serve \
  --listen 127.0.0.1:$EIDCA_PORT 2>"$BENCH_DIR/eidca.log" &
EIDCA_PID=$!
pids+=($!)
"$BIN/examples/fixed_body" 127.0.0.1:$FIXED_PORT 2>"$BENCH_DIR/fixed.log" &
FIXED_PID=$!
pids+=($!)
# Wait until a server answers a real request: a bare connect-and-close
# would leave the OpenSSL responder spinning (see below).
wait_ready() {
  for _ in $(seq 100); do
    curl -sf -o /dev/null --max-time 2 -H 'Content-Type: application/ocsp-request' \
      --data-binary @"$(head -1 "$BENCH_DIR/post.txt")" "http://127.0.0.1:$1/ocsp" && return
    sleep 0.1
  done
}

# The OpenSSL 3.0 responder handles one connection at a time and spins at
# 100 % CPU for ever once a client connects and closes without a request,
# which is what wrk does with its idle connections when a run ends. So it
# is started before each of its runs (RESTART) and stopped right after
# (STOP): left spinning, it would take one of the two cores from every
# other figure.
OPENSSL_PID=
stop_openssl() {
  [ -n "$OPENSSL_PID" ] && kill "$OPENSSL_PID" 2>/dev/null && wait "$OPENSSL_PID" 2>/dev/null || true
  OPENSSL_PID=
}
start_openssl() {
  stop_openssl
  # -port takes a port only: it listens on every address.
  openssl ocsp -index "$BENCH_DIR/index.txt" -port $OPENSSL_PORT -CA "$KEYS/issuing-ca.crt" \
    -rsigner "$KEYS/ocsp-responder.crt" -rkey "$KEYS/ocsp-responder.key" -nmin 10 \
    -ignore_err 2>/dev/null >/dev/null &
  OPENSSL_PID=$!
  pids+=($!)
  wait_ready $OPENSSL_PORT
}
wait_ready $EIDCA_PORT
wait_ready $FIXED_PORT

# CPU time (user + system) of a process so far, in clock ticks of 10 ms.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

E=http://127.0.0.1:$EIDCA_PORT
F=http://127.0.0.1:$FIXED_PORT
O=http://127.0.0.1:$OPENSSL_PORT

# The figures: label, the server's PID variable, a command before each run
# (the OpenSSL peer must be restarted), wrk's script arguments.
SCENARIOS=9
scenario() {
  RESTART=true
  STOP=true
  CEIL=
  case $1 in
    0) LABEL="fixed 300-byte body, static GET (ceiling)"; PID_VAR=FIXED_PID
       ARGS=(-s static.lua "$F/") ;;
    1) LABEL="fixed 300-byte body, GET round robin (ceiling)"; PID_VAR=FIXED_PID
       ARGS=(-s get.lua "$F/" -- "$BENCH_DIR/get.txt") ;;
    2) LABEL="fixed 300-byte body, POST round robin (ceiling)"; PID_VAR=FIXED_PID
       ARGS=(-s post.lua "$F/" -- "$BENCH_DIR/post.txt") ;;
    3) LABEL="fixed OCSP-shaped answer (890 bytes, 5 headers), static GET"; PID_VAR=FIXED_PID
       ARGS=(-s static.lua "$F/ocsp-shaped"); CEIL=0 ;;
    4) LABEL="eidca cached GET, one URL"; PID_VAR=EIDCA_PID; CEIL=0
       ARGS=(-s static.lua "$E$(head -1 "$BENCH_DIR/get.txt")") ;;
    5) LABEL="eidca cached GET, $SAMPLE serials round robin"; PID_VAR=EIDCA_PID; CEIL=1
       ARGS=(-s get.lua "$E/" -- "$BENCH_DIR/get.txt") ;;
    6) LABEL="eidca cached POST, $SAMPLE serials round robin"; PID_VAR=EIDCA_PID; CEIL=2
       ARGS=(-s post.lua "$E/ocsp" -- "$BENCH_DIR/post.txt") ;;
    7) LABEL="eidca nonce POST (signed per request)"; PID_VAR=EIDCA_PID
       ARGS=(-s post.lua "$E/ocsp" -- "$BENCH_DIR/post-nonce.txt") ;;
    8) LABEL="openssl ocsp -index, POST (peer)"; PID_VAR=OPENSSL_PID; RESTART=start_openssl
       STOP=stop_openssl
       ARGS=(-s post.lua "$O/" -- "$BENCH_DIR/post.txt") ;;
  esac
}

cd "$EIDCA_BENCH_DIR"
results=$BENCH_DIR/results.txt
: >"$results"
# Warm-up (caches, connections), then RUNS rounds in which every figure
# gets one run: the rounds interleave the figures, so that load from other
# processes on the machine falls on all of them alike.
for s in $(seq 0 $((SCENARIOS - 1))); do
  scenario "$s"; $RESTART
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "${ARGS[@]}" >/dev/null
  $STOP
done
for _ in $(seq "$RUNS"); do
  for s in $(seq 0 $((SCENARIOS - 1))); do
    scenario "$s"; $RESTART
    before=$(cpu_ticks "${!PID_VAR}")
    result=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "${ARGS[@]}" | grep '^RESULT')
    echo "$s $result $(($(cpu_ticks "${!PID_VAR}") - before))" >>"$results"
    $STOP
  done
done

# Per figure: the median run's requests/s and latencies, errors over all
# runs, and the server's CPU time per request over all runs (load from
# other processes does not inflate it, unlike the rates).
echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, median of $RUNS interleaved runs; $COUNT certificates; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| what | req/s | of its ceiling | p50 µs | p99 µs | errors | server CPU µs/req | runs (req/s) |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
# The ceiling of a figure is the fixed body asked for the same way (one URL,
# the same URLs round robin, the same POST bodies), so that wrk's own cost
# per request is the same on both sides of the ratio.
declare -A MEDIAN
for s in $(seq 0 $((SCENARIOS - 1))); do
  scenario "$s"
  # Fields: scenario RESULT req/s p50 p99 errors requests ticks.
  MEDIAN[$s]=$(awk -v s="$s" '$1 == s { print $3 }' "$results" | sort -n |
    awk '{ r[NR] = $1 } END { print r[int((NR + 1) / 2)] }')
  awk -v s="$s" '$1 == s' "$results" | sort -k3 -n |
    awk -v label="$LABEL" -v ceiling="${CEIL:+${MEDIAN[$CEIL]}}" '
    { rps[NR] = $3; p50[NR] = $4; p99[NR] = $5; errors += $6; requests += $7; ticks += $8
      all = all " " $3 }
    END {
      m = int((NR + 1) / 2)
      ratio = ceiling ? sprintf("%.0f %%", 100 * rps[m] / ceiling) : ""
      printf "| %s | %d | %s | %.0f | %.0f | %d | %.1f | %s |\n", label, rps[m], ratio,
        p50[m], p99[m], errors, ticks * 10000 / requests, all
    }'
done

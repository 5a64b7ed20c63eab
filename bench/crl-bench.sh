#!/usr/bin/env bash
# The CRL benchmark of BENCHMARKS.md, section "CRLs": every step three times
# under /usr/bin/time -v, each its own process, then the medians.
#
#   bench/crl-bench.sh [WORKDIR]      # default /tmp/eidca-crl-bench
#
# Needs /usr/bin/time (Debian: apt-get install time) and about 3 GB of disk
# in WORKDIR. The stores are filled without timing (examples/crl_bench.rs
# says how); filling 1,000,000 certificates takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/eidca-crl-bench}
rm -rf "$work" && mkdir -p "$work"

cargo build --release --example crl_bench
bench=target/release/examples/crl_bench

# measure LABEL COMMAND...: three runs; prints each run's own report line,
# its wall time and peak RSS, then the medians.
measure() {
    local label=$1 walls=() rsss=()
    shift
    for run in 1 2 3; do
        local report="$work/time.txt"
        /usr/bin/time -v -o "$report" "$@" | sed "s/^/  run $run: /"
        walls+=("$(awk -F': ' '/Elapsed \(wall clock\)/ {
            n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s }' "$report")")
        rsss+=("$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$report")")
    done
    local wall rss
    wall=$(printf '%s\n' "${walls[@]}" | sort -g | sed -n 2p)
    rss=$(printf '%s\n' "${rsss[@]}" | sort -g | sed -n 2p)
    printf '%-40s median wall %6.2f s   median peak RSS %6.1f MB   (walls: %s)\n' \
        "$label" "$wall" "$(awk -v kb="$rss" 'BEGIN { print kb / 1024 }')" "${walls[*]}"
}

for size in 100000 1000000; do
    data="$work/store-$size"
    nice "$bench" fill --data "$data" --listed "$size"
    measure "eidca build-full $size" "$bench" build-full --data "$data"
    measure "eidca publish-full $size" "$bench" publish-full --data "$data"
    ossl="$work/openssl-$size"
    bench/openssl-gencrl.sh "$size" "$ossl"
    measure "openssl ca -gencrl $size" openssl ca -gencrl -config "$ossl/openssl.cnf" -out "$ossl/crl.pem"
done

# The full CRL reads only listed certificates: 100,000 among 1,000,000.
data="$work/store-mixed"
nice "$bench" fill --data "$data" --listed 100000 --good 900000
measure "eidca build-full 100000 of 1000000" "$bench" build-full --data "$data"

data="$work/store-1000000"
"$bench" change --data "$data" --changes 10000
measure "eidca build-delta 10000 of 1000000" "$bench" build-delta --data "$data"
measure "eidca publish-delta 10000 of 1000000" "$bench" publish-delta --data "$data"
"$bench" plan --data "$data"

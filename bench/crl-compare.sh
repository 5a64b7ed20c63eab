#!/usr/bin/env bash
# CRL figures of two revisions side by side, in one run: the same store,
# each step run alternately by the old and the new `crl_bench`, RUNS times,
# then the medians of the step's own timing (printed by crl_bench itself,
# finer than /usr/bin/time's 10 ms).
#
#   bench/crl-compare.sh OLD_REV [WORKDIR]   # e.g. bench/crl-compare.sh 747561d
#
# Builds OLD_REV in a throw-away worktree (its own target directory) and
# this checkout, fills one store of LISTED (default 1,000,000) listed
# certificates with this checkout's binary (the schema is the same), then
# times build-full, publish-full, and after `change`, build-delta and
# publish-delta. Needs about 3 GB in WORKDIR (default /tmp/eidca-crl-compare).
set -euo pipefail
cd "$(dirname "$0")/.."
old_rev=${1:?usage: bench/crl-compare.sh OLD_REV [WORKDIR]}
work=${2:-/tmp/eidca-crl-compare}
LISTED=${LISTED:-1000000}
RUNS=${RUNS:-3}

old_tree="$work/old-tree"
mkdir -p "$work"
[ -d "$old_tree" ] || git worktree add --detach "$old_tree" "$old_rev"
(cd "$old_tree" && nice cargo build --release --locked --example crl_bench)
nice cargo build --release --locked --example crl_bench
old="$old_tree/target/release/examples/crl_bench"
new="target/release/examples/crl_bench"

data="$work/store"
if [ ! -s "$data/filled" ]; then
    rm -rf "$data"
    nice "$new" fill --data "$data" --listed "$LISTED"
    touch "$data/filled"
fi

# ms LINE: the milliseconds a crl_bench report line ends with.
ms() { sed -n 's/.* \([0-9.]*\) ms$/\1/p'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# compare STEP: RUNS alternating runs of old and new; one table row.
compare() {
    local step=$1 olds=() news=()
    for _ in $(seq "$RUNS"); do
        olds+=("$("$old" "$step" --data "$data" | ms)")
        news+=("$("$new" "$step" --data "$data" | ms)")
    done
    local o n
    o=$(printf '%s\n' "${olds[@]}" | median)
    n=$(printf '%s\n' "${news[@]}" | median)
    printf '| %s | %s ms (%s) | %s ms (%s) | %.2f |\n' "$step" "$o" "${olds[*]}" "$n" "${news[*]}" \
        "$(awk -v o="$o" -v n="$n" 'BEGIN { print n / o }')"
}

echo "| step ($LISTED listed) | $old_rev | this checkout | new / old |"
echo "|---|---|---|---|"
compare build-full
compare publish-full
"$new" change --data "$data" --changes 10000 >/dev/null
compare build-delta
compare publish-delta

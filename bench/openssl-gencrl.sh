#!/usr/bin/env bash
# Baseline for BENCHMARKS.md, section "CRLs": an OpenSSL CA database
# (index.txt) with N revoked entries shaped like the crl_bench store (one in
# three on hold, the others revoked with the reasons in turn), and
# a config that makes `openssl ca -gencrl` sign with the development issuing
# CA (keys-dev/), as eidca does.
#
#   bench/openssl-gencrl.sh N DIR
#   /usr/bin/time -v openssl ca -gencrl -config DIR/openssl.cnf -out DIR/crl.pem
set -euo pipefail

n=${1:?usage: $0 N DIR}
dir=${2:?usage: $0 N DIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$dir"

# index.txt: status, expiry, revocation date[,reason[,hold instruction]],
# serial (16 random bytes, positive), file name, subject; tab-separated.
awk -v n="$n" 'BEGIN {
    srand(1);
    # openssl ca does not know privilegeWithdrawn (9): five reasons, not six.
    split("unspecified keyCompromise affiliationChanged superseded cessationOfOperation", reasons, " ");
    for (i = 0; i < n; i++) {
        serial = sprintf("%X", 4 + int(rand() * 4));
        for (j = 0; j < 31; j++) serial = serial sprintf("%X", int(rand() * 16));
        reason = (i % 3 == 0) ? "certificateHold,holdInstructionReject" : reasons[(i % 5) + 1];
        printf "R\t281231000000Z\t260101000000Z,%s\t%s\tunknown\t/C=TW/CN=Subscriber %d\n", reason, serial, i;
    }
}' > "$dir/index.txt"
echo "unique_subject = no" > "$dir/index.txt.attr"
echo 01 > "$dir/crlnumber"

cat > "$dir/openssl.cnf" <<CNF
[ca]
default_ca = bench

[bench]
database = $dir/index.txt
crlnumber = $dir/crlnumber
certificate = $repo/keys-dev/issuing-ca.crt
private_key = $repo/keys-dev/issuing-ca.key
default_md = sha256
default_crl_hours = 24
crl_extensions = crl_ext

[crl_ext]
authorityKeyIdentifier = keyid:always
CNF
echo "$dir: index.txt with $n revoked entries, openssl.cnf"

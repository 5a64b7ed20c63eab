#!/usr/bin/env bash
# The reference point of BENCHMARKS.md ("RA API"): `openssl ca -batch
# -infiles` signing the very CSRs that bench/ra_api.rs wrote, with the same
# issuing CA key and a profile like person-sign. One process, no HTTP, and
# its database (index.txt) is not fsynced: an upper bound, not a CA.
#
#   bench/openssl-ca.sh DIR [COUNT]     # DIR as given to ra_api --dir
set -euo pipefail
dir=${1:?usage: bench/openssl-ca.sh DIR [COUNT]}
count=${2:-2000}
work=$dir/openssl-ca
rm -rf "$work"
mkdir -p "$work/certs"
: > "$work/index.txt"
cat > "$work/ca.cnf" <<EOF
[ ca ]
default_ca = bench
[ bench ]
dir = $work
database = \$dir/index.txt
new_certs_dir = \$dir/certs
certificate = $dir/keys/issuing-ca.crt
private_key = $dir/keys/issuing-ca.key
serial = \$dir/serial
rand_serial = yes
default_md = sha256
default_days = 1095
policy = anything
unique_subject = no
copy_extensions = none
x509_extensions = person_sign
[ anything ]
commonName = supplied
[ person_sign ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation
extendedKeyUsage = clientAuth,emailProtection
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
crlDistributionPoints = URI:http://127.0.0.1:8080/crl/full.crl
authorityInfoAccess = OCSP;URI:http://127.0.0.1:8080/ocsp,caIssuers;URI:http://127.0.0.1:8080/ca/issuing-ca.crt
certificatePolicies = 1.3.6.1.4.1.32473.1.1
EOF
mapfile -t files < <(seq 0 $((count - 1)) | sed "s|.*|$dir/csr/&.csr|")
start=$(date +%s.%N)
openssl ca -config "$work/ca.cnf" -batch -notext -out "$work/issued.pem" -infiles "${files[@]}" 2> "$work/openssl.log"
end=$(date +%s.%N)
issued=$(find "$work/certs" -name "*.pem" | wc -l)
awk -v n="$issued" -v s="$start" -v e="$end" \
  'BEGIN { printf "openssl ca: %d in %.2fs = %.0f/s\n", n, e - s, n / (e - s) }'

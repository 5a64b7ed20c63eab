# Sourced by bench/ocsp-load.sh and bench/ocsp-flood.sh: the store and the
# OCSP requests they send, made once in BENCH_DIR and kept between runs
# (delete the directory to make them again). Needs REPO, BENCH_DIR, COUNT,
# SAMPLE, BIN (with examples/fill_store) and KEYS set.

# 1. The store: COUNT real certificates (see examples/fill_store.rs).
if [ ! -s "$BENCH_DIR/serials.txt" ]; then
  rm -rf "$BENCH_DIR/data"
  "$BIN/examples/fill_store" --config ca-config/eidca.toml --data "$BENCH_DIR/data" \
    --count "$COUNT" --out "$BENCH_DIR"
fi

# 2. Requests for SAMPLE serials spread over the store, made by OpenSSL's
#    own client: without nonce (cacheable) and with one (signed per request).
if [ ! -s "$BENCH_DIR/post-nonce.txt" ]; then
  rm -rf "$BENCH_DIR/requests" && mkdir -p "$BENCH_DIR/requests"
  # A reproducible random sample: good, suspended and revoked as in the store.
  shuf -n "$SAMPLE" --random-source=<(yes) "$BENCH_DIR/serials.txt" | cut -d' ' -f1 \
    >"$BENCH_DIR/sample.txt"
  xargs -P 2 -I{} openssl ocsp -issuer "$KEYS/issuing-ca.crt" -serial 0x{} -no_nonce \
    -reqout "$BENCH_DIR/requests/{}.der" <"$BENCH_DIR/sample.txt"
  xargs -P 2 -I{} openssl ocsp -issuer "$KEYS/issuing-ca.crt" -serial 0x{} \
    -reqout "$BENCH_DIR/requests/{}-nonce.der" <"$BENCH_DIR/sample.txt"
  : >"$BENCH_DIR/get.txt"; : >"$BENCH_DIR/post.txt"; : >"$BENCH_DIR/post-nonce.txt"
  while read -r serial; do
    echo "/ocsp/$(base64 -w0 "$BENCH_DIR/requests/$serial.der")" >>"$BENCH_DIR/get.txt"
    echo "$BENCH_DIR/requests/$serial.der" >>"$BENCH_DIR/post.txt"
    echo "$BENCH_DIR/requests/$serial-nonce.der" >>"$BENCH_DIR/post-nonce.txt"
  done <"$BENCH_DIR/sample.txt"
fi


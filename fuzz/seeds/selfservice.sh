#!/usr/bin/env bash
# Writes the selfservice target's seeds (fuzz_targets/selfservice.rs says
# what the bytes mean): the first byte picks suspend (0) or resume (1), then
# header lines, an empty line, the body. Run from anywhere; rewrites
# seeds/selfservice/.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf selfservice && mkdir selfservice
seed() { printf '%b' "$2" >"selfservice/$1"; }

form='content-type: application/x-www-form-urlencoded'
json='content-type: application/json'
same='host: 127.0.0.1:8080\norigin: http://127.0.0.1:8080'
cookie='cookie: eidca_selfservice=$NONCE'
pair='subscriber_code=A800000014&card_number=TP03000001'
json_pair='{"subscriber_code":"A800000014","card_number":"TP03000001"}'

# Through every check: the right pair, its cookie and token, same origin.
seed form-suspend "\x00$form\n$same\n$cookie\nx-fuzz-peer: 192.0.2.1\n\n$pair&csrf_token=\$TOKEN"
seed form-resume "\x01$form\n$same\n$cookie\nx-fuzz-peer: 192.0.2.1\n\n$pair&csrf_token=\$TOKEN"
seed json-suspend "\x00$json\nx-fuzz-peer: 192.0.2.2\n\n$json_pair"
seed json-resume "\x01$json; charset=utf-8\norigin: http://127.0.0.1:8080\nx-fuzz-peer: 2001:db8::1\n\n$json_pair"
seed json-lower-case "\x00$json\nx-fuzz-peer: 192.0.2.3\n\n{\"subscriber_code\":\" a800000014 \",\"card_number\":\"tp03000001\"}"
# A wrong pair, a malformed code, an unknown field.
seed json-wrong-pair "\x00$json\nx-fuzz-peer: 192.0.2.4\n\n{\"subscriber_code\":\"A800000015\",\"card_number\":\"TP03000001\"}"
seed json-bad-code "\x01$json\n\n{\"subscriber_code\":\"A8\",\"card_number\":\"TP03000001\"}"
seed json-unknown-field "\x00$json\n\n{\"subscriber_code\":\"A800000014\",\"card_number\":\"TP03000001\",\"x\":1}"
# The forgery checks: foreign origin, referer only, no origin, no cookie, bad token.
seed form-foreign-origin "\x00$form\nhost: 127.0.0.1:8080\norigin: https://evil.example\n$cookie\n\n$pair&csrf_token=\$TOKEN"
seed form-referer "\x01$form\nhost: ca.example\nreferer: http://ca.example/self-service\n$cookie\n\n$pair&csrf_token=\$TOKEN"
seed form-no-origin "\x00$form\n$cookie\n\n$pair&csrf_token=\$TOKEN"
seed form-no-cookie "\x00$form\n$same\n\n$pair&csrf_token=\$TOKEN"
seed form-bad-token "\x01$form\n$same\n$cookie\n\n$pair&csrf_token=AAAAAAAAAAAAAAAA"
seed json-null-origin "\x00$json\norigin: null\n\n$json_pair"
# Media types and sizes.
seed text-plain "\x00content-type: text/plain\n\n$pair"
seed no-content-type "\x01\n\n$json_pair"
seed json-too-large "\x00$json\n\n{\"subscriber_code\":\"$(printf 'A%.0s' $(seq 5000))\",\"card_number\":\"TP03000001\"}"

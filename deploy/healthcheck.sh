#!/bin/bash
# Container HEALTHCHECK: GET /healthz from the agent's metrics endpoint
# (ROLESNAP_METRICS, default 127.0.0.1:9187) with bash's /dev/tcp, so the image
# needs no HTTP client. Exit 0 healthy, 1 not.
addr="${ROLESNAP_METRICS:-127.0.0.1:9187}"
host="${addr%:*}"
port="${addr##*:}"
host="${host#[}"
host="${host%]}"
[ "$host" = 0.0.0.0 ] && host=127.0.0.1
[ "$host" = "::" ] && host=::1
# The agent answers after the request line and closes: a late write must
# not kill the script with SIGPIPE.
trap '' PIPE
exec 3<>"/dev/tcp/$host/$port" || exit 1
request=$'GET /healthz HTTP/1.0\r\n\r\n'
printf '%s' "$request" >&3
IFS= read -r -t 4 status <&3 || exit 1
case "$status" in
    "HTTP/1.1 200 "*) exit 0 ;;
    *) exit 1 ;;
esac

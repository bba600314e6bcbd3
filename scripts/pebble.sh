#!/usr/bin/env bash
# A real ACME server for the tests: Debian's pebble, with pebble-challtestsrv as its DNS so that the test
# domains resolve to 127.0.0.1 and pebble validates HTTP-01 against the relay's HTTP port.
#
# Usage: pebble.sh start|stop|env   (everything lives in $PEBBLE_WORKDIR, default /tmp/homedesk-pebble)
#   PEBBLE_HTTP_PORT  the relay's HTTP port: where pebble fetches /.well-known/acme-challenge/ (default 8080)
#   PEBBLE_PORT, PEBBLE_MGMT_PORT, PEBBLE_DNS_PORT, PEBBLE_DNS_MGMT_PORT, PEBBLE_TLS_PORT  (defaults 14000,
#     15000, 8053, 8055, 5001; tests pass free ports)
#   PEBBLE_HOSTS      names that resolve to 127.0.0.1 (space separated); every other name does not resolve
#   PEBBLE_CERT_VALIDITY  lifetime of issued certificates in seconds (default: pebble's own, 5 years); a
#                     tiny value makes certificates that are expired on arrival (tests of error 806)
#
# `start` makes a throw-away CA for pebble's own HTTPS listener (trusted only by whoever is given
# $PEBBLE_WORKDIR/ca.pem), starts both servers, waits for the directory, saves pebble's issuing root
# (issuer-root.pem: what a browser would trust for the certificates pebble issues) and writes `env`.
set -euo pipefail

WORKDIR="${PEBBLE_WORKDIR:-/tmp/homedesk-pebble}"
HTTP_PORT="${PEBBLE_HTTP_PORT:-8080}"
PORT="${PEBBLE_PORT:-14000}"
MGMT_PORT="${PEBBLE_MGMT_PORT:-15000}"
DNS_PORT="${PEBBLE_DNS_PORT:-8053}"
DNS_MGMT_PORT="${PEBBLE_DNS_MGMT_PORT:-8055}"
TLS_PORT="${PEBBLE_TLS_PORT:-5001}"
HOSTS="${PEBBLE_HOSTS:-}"
CERT_VALIDITY="${PEBBLE_CERT_VALIDITY:-}"

log() { printf '[pebble] %s\n' "$*" >&2; }

stop() {
  for name in pebble challtestsrv; do
    local pidfile="$WORKDIR/$name.pid"
    if [[ -f "$pidfile" ]]; then
      local pid; pid=$(cat "$pidfile")
      kill "$pid" 2>/dev/null || true
      rm -f "$pidfile"
    fi
  done
}

make_tls() {
  [[ -f "$WORKDIR/server.pem" ]] && return 0
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -keyout "$WORKDIR/ca.key" -out "$WORKDIR/ca.pem" -days 7 \
    -subj "/CN=Homedesk test ACME server CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req "${ec[@]}" -keyout "$WORKDIR/server.key" -out "$WORKDIR/server.csr" -subj "/CN=localhost" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
    > "$WORKDIR/server.ext"
  openssl x509 -req -in "$WORKDIR/server.csr" -CA "$WORKDIR/ca.pem" -CAkey "$WORKDIR/ca.key" -CAcreateserial \
    -out "$WORKDIR/server.pem" -days 7 -extfile "$WORKDIR/server.ext" 2>/dev/null
}

wait_for() { # URL [curl options]
  local url=$1; shift
  for _ in $(seq 1 100); do
    curl -fsS "$@" "$url" -o /dev/null 2>/dev/null && return 0
    sleep 0.1
  done
  log "no answer from $url; logs in $WORKDIR"; tail -5 "$WORKDIR"/*.log >&2 || true
  return 1
}

wait_for_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  log "nothing listens on port $1; logs in $WORKDIR"; tail -5 "$WORKDIR"/*.log >&2 || true
  return 1
}

start() {
  command -v pebble >/dev/null || { log "pebble is not installed: scripts/install-toolchain.sh --for-tests"; exit 1; }
  mkdir -p "$WORKDIR"
  stop
  make_tls
  local validity=""
  [[ -n "$CERT_VALIDITY" ]] && validity=", \"certificateValidityPeriod\": $CERT_VALIDITY"
  cat > "$WORKDIR/pebble.json" <<EOF
{"pebble": {"listenAddress": "127.0.0.1:$PORT", "managementListenAddress": "127.0.0.1:$MGMT_PORT",
  "certificate": "$WORKDIR/server.pem", "privateKey": "$WORKDIR/server.key",
  "httpPort": $HTTP_PORT, "tlsPort": $TLS_PORT, "ocspResponderURL": "", "externalAccountBindingRequired": false$validity}}
EOF
  # Only the names in PEBBLE_HOSTS resolve (added below); others get no address, like unknown names.
  setsid pebble-challtestsrv -defaultIPv4 "" -defaultIPv6 "" -dns01 "127.0.0.1:$DNS_PORT" -http01 "" \
    -https01 "" -tlsalpn01 "" -management "127.0.0.1:$DNS_MGMT_PORT" > "$WORKDIR/challtestsrv.log" 2>&1 &
  echo $! > "$WORKDIR/challtestsrv.pid"
  # No random validation sleeps, no deliberately rejected nonces, fresh validation for every order.
  PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
    setsid pebble -config "$WORKDIR/pebble.json" -dnsserver "127.0.0.1:$DNS_PORT" > "$WORKDIR/pebble.log" 2>&1 &
  echo $! > "$WORKDIR/pebble.pid"
  wait_for_port "$DNS_MGMT_PORT"
  for host in $HOSTS; do
    curl -fsS -X POST "http://127.0.0.1:$DNS_MGMT_PORT/add-a" -d "{\"host\":\"$host\",\"addresses\":[\"127.0.0.1\"]}"
  done
  wait_for "https://127.0.0.1:$PORT/dir" --cacert "$WORKDIR/ca.pem"
  curl -fsS --cacert "$WORKDIR/ca.pem" "https://127.0.0.1:$MGMT_PORT/roots/0" -o "$WORKDIR/issuer-root.pem"
  env_vars > "$WORKDIR/env"
  log "pebble ready: https://127.0.0.1:$PORT/dir (validates HTTP-01 on port $HTTP_PORT)"
}

env_vars() {
  echo "PEBBLE_DIRECTORY=https://127.0.0.1:$PORT/dir"
  echo "PEBBLE_CA_ROOT=$WORKDIR/ca.pem"
  echo "PEBBLE_ISSUER_ROOT=$WORKDIR/issuer-root.pem"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) if [[ -f "$WORKDIR/env" ]]; then cat "$WORKDIR/env"; else env_vars; fi ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: its own cluster (initdb) on 127.0.0.1 and a free port,
# trust authentication on loopback only, nothing shared with a system-wide PostgreSQL.
#
# Usage: postgres.sh start   start the cluster (idempotent; safe to call from parallel tests)
#        postgres.sh url     print the admin URL (postgres://postgres@127.0.0.1:PORT/postgres)
#        postgres.sh env     print `export HOMEDESK_TEST_POSTGRES_URL=…`
#        postgres.sh ca      print the path of the test CA that signed the server's TLS certificate
#        postgres.sh pause   stop the server but keep the cluster (a database that went away)
#        postgres.sh resume  start a paused cluster again on its port
#        postgres.sh stop    stop the cluster and delete it
#
# TLS is on (a throwaway CA made at initdb, server certificate for 127.0.0.1 and localhost); the role
# `tls_only` may connect over TLS only (hostssl), to test that the relay's connections are encrypted.
#
# The cluster lives in $HOMEDESK_PG_DIR (default /var/tmp/homedesk-postgres-$UID): outside /root, so that
# the `postgres` OS user can own it when we run as root (PostgreSQL refuses to run as root).
# Installed by `scripts/install-toolchain.sh --for-tests` (Debian package `postgresql`).
set -euo pipefail

DIR="${HOMEDESK_PG_DIR:-/var/tmp/homedesk-postgres-$(id -u)}"
DATA="$DIR/data"

log() { printf '[postgres] %s\n' "$*" >&2; }

bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [[ -x "$dir/initdb" ]] || { log "PostgreSQL is not installed (apt-get install postgresql, or scripts/install-toolchain.sh --for-tests)"; exit 1; }
  echo "$dir"
}

# PostgreSQL refuses to run as root: as root we run it as the `postgres` user Debian's package creates.
as_owner() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  local port
  for _ in $(seq 1 200); do
    # Below the kernel's ephemeral range (32768+ on Linux), where outgoing connections take their ports.
    port=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  log "no free port found"; exit 1
}

running() {
  [[ -f "$DIR/port" ]] && as_owner "$(bindir)/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

# Loopback TCP only, the socket inside our own directory; fsync off: a throwaway cluster for tests.
# The server must not inherit our lock (fd 9) or our output (callers wait for it to close).
start_on() {
  as_owner "$1/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $2 -c unix_socket_directories=$DIR -c fsync=off -c max_connections=300 \
        -c ssl=on -c ssl_cert_file=$DIR/tls/server.crt -c ssl_key_file=$DIR/tls/server.key" \
    start </dev/null >/dev/null 2>&1 9>&-
}

# A CA and a server certificate signed by it; the key readable by the server's owner only.
make_tls() {
  local tls="$DIR/tls"
  mkdir -p "$tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=Homedesk test database CA" \
    -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$tls/ext.cnf"
  openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 30 \
    -extfile "$tls/ext.cnf" -out "$tls/server.crt" 2>/dev/null
  chmod 0600 "$tls/server.key" "$tls/ca.key"
  chmod 0644 "$tls/ca.pem"
  if [[ $(id -u) == 0 ]]; then chown -R postgres: "$tls"; fi
}

start() {
  local bin port
  bin=$(bindir)
  mkdir -p "$DIR"
  if [[ $(id -u) == 0 ]]; then chown postgres: "$DIR"; fi
  chmod 0700 "$DIR"
  # One starter at a time (tests may call this in parallel).
  exec 9>"$DIR.lock"
  flock 9
  if running; then return 0; fi
  if [[ ! -f "$DATA/PG_VERSION" ]]; then
    log "initdb $DATA"
    as_owner "$bin/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C --no-sync >/dev/null
    # First match wins: tls_only gets in over TLS only.
    { printf 'hostnossl all tls_only 0.0.0.0/0 reject\nhostssl all tls_only 127.0.0.1/32 trust\n'
      cat "$DATA/pg_hba.conf"; } >"$DIR/pg_hba.conf.new"
    as_owner cp "$DIR/pg_hba.conf.new" "$DATA/pg_hba.conf"
    rm -f "$DIR/pg_hba.conf.new"
    make_tls
  fi
  # A port found free can be taken before PostgreSQL binds it (the machine is busy with tests): try
  # another one when that happens, fail on anything else.
  for attempt in $(seq 1 10); do
    port=$(free_port)
    rm -f "$DIR/server.log"
    if start_on "$bin" "$port"; then break; fi
    if ((attempt == 10)) || ! grep -q "Address already in use" "$DIR/server.log"; then
      log "PostgreSQL did not start; its log:"; tail -n 30 "$DIR/server.log" >&2; exit 1
    fi
    log "port $port was taken meanwhile; trying another"
  done
  echo "$port" >"$DIR/port"
  as_owner "$bin/psql" -h "$DIR" -p "$port" -U postgres -d postgres -qAt \
    -c "DO \$\$ BEGIN CREATE ROLE tls_only LOGIN SUPERUSER; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$" >/dev/null
  log "listening on 127.0.0.1:$port ($DATA), TLS on"
}

url() {
  running || { log "not running (postgres.sh start)"; exit 1; }
  echo "postgres://postgres@127.0.0.1:$(cat "$DIR/port")/postgres"
}

pause() {
  as_owner "$(bindir)/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1
}

resume() {
  [[ -f "$DIR/port" ]] || { log "no cluster to resume (postgres.sh start)"; exit 1; }
  start_on "$(bindir)" "$(cat "$DIR/port")" || { log "PostgreSQL did not resume; its log:"; tail -n 30 "$DIR/server.log" >&2; exit 1; }
}

stop() {
  if [[ -f "$DATA/PG_VERSION" ]]; then
    as_owner "$(bindir)/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$DIR" "$DIR.lock"
}

case "${1:-}" in
  start) start ;;
  url) url ;;
  env) echo "export HOMEDESK_TEST_POSTGRES_URL=$(url)" ;;
  ca) running || { log "not running (postgres.sh start)"; exit 1; }; echo "$DIR/tls/ca.pem" ;;
  pause) pause ;;
  resume) resume ;;
  stop) stop ;;
  *) echo "usage: $0 start|url|env|ca|pause|resume|stop" >&2; exit 2 ;;
esac

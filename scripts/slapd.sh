#!/usr/bin/env bash
# slapd.sh - a throwaway OpenLDAP directory on loopback for the relay's directory (LDAP/AD) tests.
#
# Usage: slapd.sh start [DIR] | stop [DIR] | env [DIR]        (DIR default: $HOMEDESK_SLAPD_DIR or
#        ~/.cache/homedesk/slapd). `start` wipes DIR, generates a test CA and server certificate (openssl),
#        starts slapd on two free 127.0.0.1 ports and loads the test entries; it then prints the same
#        KEY=value lines as `env`. `stop` kills that slapd and removes DIR.
#
# Listeners: ldap://127.0.0.1:P (StartTLS offered) and ldaps://127.0.0.1:Q, certificate for 127.0.0.1 and
#   localhost signed by DIR/ca.pem. DIR/other-ca.pem is an unrelated CA (for "wrong CA" tests).
# Directory (base dc=homedesk,dc=test):
#   ou=people: uid=alice (alice-pass-1, groups staff), uid=bob (bob-pass-1, no group),
#              uid=carol (carol-pass-1, groups staff and ops), and one user whose uid is full of filter and
#              DN metacharacters, $WEIRD_UID below (password weird-pass-1, group ops).
#   ou=groups: groupOfNames cn=staff, cn=ops; the memberof overlay maintains users' memberOf.
#   ou=services: cn=relay (relay-service-pass), the service account for search-then-bind.
# Access: userPassword only for authentication; everything else readable by anyone, and unauthenticated
#   binds (a DN with an empty password) are ALLOWED (`allow bind_anon_dn`): the relay must refuse them.
set -Eeuo pipefail

CACHE="${HOMEDESK_CACHE:-$HOME/.cache/homedesk}"
DIR="${2:-${HOMEDESK_SLAPD_DIR:-$CACHE/slapd}}"
BASE="dc=homedesk,dc=test"
ROOT_DN="cn=admin,$BASE"
ROOT_PW="root-pass-$$-$RANDOM"
SERVICE_DN="cn=relay,ou=services,$BASE"
SERVICE_PW="relay-service-pass"
WEIRD_UID='evil*)(uid=*)(|(cn=x\,y"+<z>;#'
SLAPD="${SLAPD:-/usr/sbin/slapd}"

log() { printf '[slapd.sh] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# RFC 4514 DN value with every byte hex-escaped (valid for any value).
dn_value() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n' | sed 's/../\\&/g'; }
b64() { printf '%s' "$1" | base64 -w0; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 40000))
    port_free "$p" && { echo "$p"; return; }
  done
  die "no free port found"
}

print_env() {
  [[ -f "$DIR/ports" ]] || die "no slapd state in $DIR (run: $0 start $DIR)"
  local ldap_port ldaps_port
  read -r ldap_port ldaps_port <"$DIR/ports"
  cat <<EOF
HOMEDESK_SLAPD_DIR=$DIR
HOMEDESK_LDAP_URL=ldap://127.0.0.1:$ldap_port
HOMEDESK_LDAPS_URL=ldaps://127.0.0.1:$ldaps_port
HOMEDESK_LDAP_CA=$DIR/ca.pem
HOMEDESK_LDAP_OTHER_CA=$DIR/other-ca.pem
HOMEDESK_LDAP_BASE=$BASE
HOMEDESK_LDAP_SERVICE_DN=$SERVICE_DN
HOMEDESK_LDAP_SERVICE_PASSWORD=$SERVICE_PW
EOF
}

make_certificates() {
  local d="$DIR"
  for ca in ca other-ca; do
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
      -subj "/CN=Homedesk test $ca" -keyout "$d/$ca.key" -out "$d/$ca.pem" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  done
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 30 \
    -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null
}

write_config() {
  cat >"$DIR/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile $DIR/slapd.pid
TLSCACertificateFile $DIR/ca.pem
TLSCertificateFile $DIR/server.pem
TLSCertificateKeyFile $DIR/server.key
allow bind_anon_dn bind_anon_cred
database mdb
maxsize 16777216
suffix "$BASE"
rootdn "$ROOT_DN"
rootpw $ROOT_PW
directory $DIR/db
overlay memberof
access to attrs=userPassword by anonymous auth by * none
access to * by * read
EOF
}

person() { # uid password
  cat <<EOF
dn: uid=$(dn_value "$1"),ou=people,$BASE
objectClass: inetOrgPerson
uid:: $(b64 "$1")
cn:: $(b64 "$1")
sn: Test
userPassword: $2

EOF
}

group() { # cn member-uids...
  local cn=$1; shift
  printf 'dn: cn=%s,ou=groups,%s\nobjectClass: groupOfNames\ncn: %s\n' "$cn" "$BASE" "$cn"
  for uid in "$@"; do printf 'member: uid=%s,ou=people,%s\n' "$(dn_value "$uid")" "$BASE"; done
  printf '\n'
}

write_entries() {
  {
    printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: homedesk\no: Homedesk test\n\n' "$BASE"
    for ou in people groups services; do
      printf 'dn: ou=%s,%s\nobjectClass: organizationalUnit\nou: %s\n\n' "$ou" "$BASE" "$ou"
    done
    printf 'dn: %s\nobjectClass: person\ncn: relay\nsn: service\nuserPassword: %s\n\n' "$SERVICE_DN" "$SERVICE_PW"
    person alice alice-pass-1
    person bob bob-pass-1
    person carol carol-pass-1
    person "$WEIRD_UID" weird-pass-1
    group staff alice carol
    group ops carol "$WEIRD_UID"
  } >"$DIR/entries.ldif"
}

start() {
  [[ -x "$SLAPD" ]] || die "slapd is not installed ($SLAPD): run scripts/install-toolchain.sh --for-tests"
  command -v ldapadd >/dev/null || die "ldap-utils is not installed: run scripts/install-toolchain.sh --for-tests"
  stop_quietly
  mkdir -p "$DIR/db"
  chmod 700 "$DIR"
  make_certificates
  write_config
  write_entries
  local ldap_port ldaps_port started=0
  for _ in 1 2 3 4 5; do
    ldap_port=$(free_port); ldaps_port=$(free_port)
    [[ $ldap_port != "$ldaps_port" ]] || continue
    if "$SLAPD" -f "$DIR/slapd.conf" -h "ldap://127.0.0.1:$ldap_port/ ldaps://127.0.0.1:$ldaps_port/" \
      >"$DIR/slapd.log" 2>&1; then
      started=1; break
    fi
  done
  ((started)) || die "slapd did not start: $(tail -5 "$DIR/slapd.log")"
  echo "$ldap_port $ldaps_port" >"$DIR/ports"
  for _ in $(seq 100); do
    ldapsearch -x -H "ldap://127.0.0.1:$ldap_port" -b "" -s base >/dev/null 2>&1 && break
    sleep 0.1
  done
  ldapadd -x -H "ldap://127.0.0.1:$ldap_port" -D "$ROOT_DN" -w "$ROOT_PW" -f "$DIR/entries.ldif" >"$DIR/load.log" 2>&1 \
    || die "loading the test entries failed: $(tail -5 "$DIR/load.log")"
  print_env
}

stop_quietly() {
  if [[ -f "$DIR/slapd.pid" ]]; then
    local pid; pid=$(cat "$DIR/slapd.pid")
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -rf "$DIR"
}

case "${1:-}" in
  start) start ;;
  stop) stop_quietly ;;
  env) print_env ;;
  *) echo "usage: $0 start|stop|env [DIR]" >&2; exit 2 ;;
esac

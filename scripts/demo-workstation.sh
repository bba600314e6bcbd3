#!/usr/bin/env bash
# A demo office workstation on this machine: xrdp (TLS) on 127.0.0.1:3389 with one demo user whose
# desktop shows a coloured background and a terminal. `cargo xtask run --demo` uses it so that a newcomer
# sees a real desktop in the browser after the first command.
#
# Usage: DEMO_USER=name DEMO_PASSWORD=secret demo-workstation.sh up     (root; idempotent)
#        demo-workstation.sh down
# Prints "DEMO_ADDR=127.0.0.1:3389" when the workstation accepts connections.
set -euo pipefail

PORT=${DEMO_PORT:-3389}
STATE=${DEMO_STATE_DIR:-/tmp/homedesk-demo-workstation}
log() { printf '[demo-workstation] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

up() {
  [[ $(id -u) == 0 ]] || die "must run as root (it installs xrdp and creates the demo user)"
  [[ -n "${DEMO_USER:-}" && -n "${DEMO_PASSWORD:-}" ]] || die "DEMO_USER and DEMO_PASSWORD must be set"
  local pkgs=(xrdp xorgxrdp xterm x11-xserver-utils) missing=() p
  for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
  if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi

  if ! id -u "$DEMO_USER" >/dev/null 2>&1; then
    log "creating user $DEMO_USER"
    useradd --create-home --shell /bin/bash "$DEMO_USER"
  fi
  echo "$DEMO_USER:$DEMO_PASSWORD" | chpasswd
  local home; home=$(getent passwd "$DEMO_USER" | cut -d: -f6)
  cat >"$home/.xsession" <<'XS'
#!/bin/sh
xsetroot -solid '#2b5797'
exec xterm -geometry 90x24+80+80 -bg '#fdfdf6' -fg black -title 'Homedesk demo workstation' \
  -e sh -c 'echo "Welcome to your office PC, shown by Homedesk."; echo; exec bash'
XS
  chown "$DEMO_USER:$DEMO_USER" "$home/.xsession"; chmod 755 "$home/.xsession"

  if port_open "$PORT"; then
    log "an RDP server already listens on 127.0.0.1:$PORT: using it"
  else
    mkdir -p "$STATE"
    local ini=/etc/xrdp/xrdp.ini
    sed -i "/^\[Globals\]/,/^\[/ s|^port=.*|port=tcp://127.0.0.1:$PORT|" "$ini"
    id -nG xrdp | grep -qw ssl-cert || usermod -aG ssl-cert xrdp
    sh /usr/share/xrdp/socksetup
    setsid /usr/sbin/xrdp-sesman --nodaemon >"$STATE/sesman.log" 2>&1 < /dev/null &
    echo $! >"$STATE/sesman.pid"
    sleep 1
    setsid runuser -u xrdp -- /usr/sbin/xrdp --nodaemon >"$STATE/xrdp.log" 2>&1 < /dev/null &
    echo $! >"$STATE/xrdp.pid"
    local i
    for i in $(seq 1 100); do port_open "$PORT" && break; sleep 0.1; done
    port_open "$PORT" || die "xrdp did not start; see $STATE/xrdp.log"
  fi
  echo "DEMO_ADDR=127.0.0.1:$PORT"
}

down() {
  local f
  for f in "$STATE"/xrdp.pid "$STATE"/sesman.pid; do
    [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Installs everything Homedesk needs to build and test on a fresh Debian 12 machine that has rustup.
# Idempotent: each step checks what is already there. Nothing is downloaded at build or run time.
#
# Why this exists: rustup's toolchains here ship no wasm32 standard library, so the client is built with
# Debian's rustc-web (std built from source with -Zbuild-std), clang-22 for ring's C code, trunk,
# wasm-bindgen-cli pinned to the crate version in Cargo.lock, and a wasm-opt new enough for its output.
#
# Tools go under $HOMEDESK_CACHE (default ~/.cache/homedesk), outside the clone, so later runs are fast.
# Usage: install-toolchain.sh [--for-tests]   (also the tools the tests use: Chromium, chromedriver, oathtool, slapd,
#        pebble + openssl + curl for scripts/pebble.sh, PostgreSQL for scripts/postgres.sh, aiosmtpd for the SMTP
#        test server)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${HOMEDESK_CACHE:-$HOME/.cache/homedesk}"
TOOLS="$CACHE/tools"
TRUNK_VERSION="0.22.1"
BINARYEN_NPM_VERSION="132"
RUSTUP_CARGO="${RUSTUP_CARGO:-$HOME/.cargo/bin/cargo}"
FOR_TESTS=0
for arg in "$@"; do
  case "$arg" in
    --for-tests) FOR_TESTS=1 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[install] %s\n' "$*" >&2; }

# wasm-bindgen-cli must equal the wasm-bindgen crate that Cargo.lock resolved.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' "$ROOT/Cargo.lock")
[[ -n "$WASM_BINDGEN_VERSION" ]] || { log "wasm-bindgen not found in Cargo.lock"; exit 1; }

apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  log "apt-get install ${missing[*]}"
  local sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

PKGS=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22 clang-22 llvm-22 pkg-config brotli)
((FOR_TESTS)) && PKGS+=(chromium chromium-driver fonts-dejavu-core oathtool slapd ldap-utils pebble openssl curl postgresql python3-aiosmtpd poppler-utils)
apt_install "${PKGS[@]}"

mkdir -p "$TOOLS/bin"
# -Zbuild-std compiles std from rust-web-src, whose own dependencies (dlmalloc, compiler_builtins, ...) must
# be in cargo's cache: the client build runs offline. Fetched by std's lockfile; a second run only checks.
log "cargo fetch of the standard library's dependencies"
RUSTC_BOOTSTRAP=1 /usr/bin/cargo fetch --locked --quiet --manifest-path /usr/lib/rustlib/src/rust/library/Cargo.toml
# Installing trunk with its own fat-LTO profile takes ~20 min on 2 cores; thin settings take a fraction
# of that and the tool runs for seconds, so speed of the tool itself does not matter.
light_profile=(CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=1
               CARGO_TARGET_DIR="$CACHE/install-target")

if [[ "$("$TOOLS/bin/trunk" --version 2>/dev/null | awk '{print $2}')" != "$TRUNK_VERSION" ]]; then
  # trunk 0.22.1 declares rust-version 1.96.1: newer than rustup stable 1.95 here; nightly is fine.
  toolchain=(); flags=()
  if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then toolchain=(+nightly); else flags=(--ignore-rust-version); fi
  log "cargo install trunk $TRUNK_VERSION (several minutes)"
  env "${light_profile[@]}" "$RUSTUP_CARGO" "${toolchain[@]}" install trunk --version "$TRUNK_VERSION" --locked \
    --root "$TOOLS" "${flags[@]}"
fi

if [[ "$("$TOOLS/bin/wasm-bindgen" --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]]; then
  log "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (several minutes)"
  # --locked fails from this registry (its lock pins a webpki-roots version not served): resolve afresh.
  env "${light_profile[@]}" "$RUSTUP_CARGO" install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force --root "$TOOLS"
fi

# Debian's binaryen 108 cannot parse wasm-bindgen's output; npm's binaryen ships a modern wasm-opt.
if [[ "$("$TOOLS/binaryen/node_modules/.bin/wasm-opt" --version 2>/dev/null | awk '{print $3}')" != "$BINARYEN_NPM_VERSION" ]]; then
  command -v npm >/dev/null || apt_install npm
  log "npm install binaryen@$BINARYEN_NPM_VERSION"
  mkdir -p "$TOOLS/binaryen"
  npm install --prefix "$TOOLS/binaryen" --no-audit --no-fund "binaryen@$BINARYEN_NPM_VERSION" >/dev/null
fi
log "toolchain ready in $TOOLS"

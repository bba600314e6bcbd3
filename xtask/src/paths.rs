//! Where things live: the clone, and the cache outside it (tools, target dirs, the built client).
//!
//! Build output and installed tools stay outside the clone so that a fresh clone on the same machine
//! (as in CI) builds incrementally.

use std::path::PathBuf;

/// The workspace root (the directory holding the top-level Cargo.toml).
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// `$HOMEDESK_CACHE`, default `~/.cache/homedesk`.
pub fn cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("HOMEDESK_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache").join("homedesk")
}

pub fn tools_bin() -> PathBuf {
    cache().join("tools").join("bin")
}

pub fn wasm_opt_bin() -> PathBuf {
    cache().join("tools").join("binaryen").join("node_modules").join(".bin")
}

/// Target dir of the host crates (relay, client-core, tests), built by rustup's cargo.
pub fn host_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| cache().join("target"))
}

/// Target dir of the wasm client, built by Debian's cargo: a different compiler, so a separate dir.
pub fn wasm_target() -> PathBuf {
    cache().join("target-wasm")
}

/// The built portal client (index.html, wasm, js, css), served by the relay as its web root.
/// `$HOMEDESK_DIST` overrides it, so two checkouts on one machine do not overwrite each other's client.
pub fn dist() -> PathBuf {
    std::env::var_os("HOMEDESK_DIST").map(PathBuf::from).unwrap_or_else(|| cache().join("dist"))
}

/// Screenshots and logs of test runs.
pub fn artifacts() -> PathBuf {
    std::env::var_os("HOMEDESK_ARTIFACTS").map(PathBuf::from).unwrap_or_else(|| cache().join("artifacts"))
}

/// The shared RDP testbed beside the clone (CI and developers have it; users do not need it).
pub fn testbed_script() -> PathBuf {
    std::env::var_os("HOMEDESK_TESTBED")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("..").join("shared").join("testbed").join("rdp-testbed.sh"))
}

/// The project's throwaway PostgreSQL cluster for tests (`start|url|env|stop`).
pub fn postgres_script() -> PathBuf {
    root().join("scripts").join("postgres.sh")
}

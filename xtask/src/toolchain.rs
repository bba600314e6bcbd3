//! Installing the toolchain and building the wasm client with it.
//!
//! rustup here has no wasm32 std, so the client is built by Debian's rustc-web with `-Zbuild-std`
//! (allowed on a stable compiler by RUSTC_BOOTSTRAP), ring's C code by clang-22, and bundled by trunk.
//! These settings are passed as environment variables so that they apply to the client build only.

use crate::{paths, shell};
use anyhow::Result;
use std::path::PathBuf;
use std::process::Command;

/// Installs what building needs; `for_tests` adds what the tests use (Chromium, chromedriver, oathtool).
pub fn install(for_tests: bool) -> Result<()> {
    let mut command = Command::new("bash");
    command.arg(paths::root().join("scripts").join("install-toolchain.sh"));
    if for_tests {
        command.arg("--for-tests");
    }
    shell::run(&mut command)
}

/// Builds the client with trunk into [`paths::dist`] and returns that directory.
///
/// Checkouts on one machine share the wasm target dir (a cold build takes minutes). Cargo locks it only
/// while compiling; trunk's wasm-bindgen step then writes into it too, so a whole build holds a lock
/// file there and a second checkout's build waits instead of mixing outputs.
pub fn build_client() -> Result<PathBuf> {
    std::fs::create_dir_all(paths::wasm_target())?;
    let lock = std::fs::File::create(paths::wasm_target().join(".homedesk-client-build.lock"))?;
    if lock.try_lock().is_err() {
        eprintln!("xtask: another checkout is building its client; waiting for it");
        lock.lock()?;
    }
    let dist = paths::dist();
    // The portal first: trunk replaces its whole dist directory, the console's included.
    trunk_build(&["index.html"], &dist)?;
    let console = dist.join(ADMIN_CONSOLE_DIR);
    trunk_build(&["admin.html", "--public-url", &format!("/{ADMIN_CONSOLE_DIR}/")], &console)?;
    precompress(&dist)?;
    precompress(&console)?;
    Ok(dist)
}

/// Builds the bench's replay page (`replay.html`, the client's decoder and painting without the
/// portal) into `dir`, with the portal's wasm profile. Only `cargo xtask bench` needs it.
pub fn build_replay_page(dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(paths::wasm_target())?;
    let lock = std::fs::File::create(paths::wasm_target().join(".homedesk-client-build.lock"))?;
    if lock.try_lock().is_err() {
        eprintln!("xtask: another checkout is building its client; waiting for it");
        lock.lock()?;
    }
    trunk_build(&["replay.html", "--public-url", "./"], dir)
}

/// Where in the dist directory the admin console's own bundle goes (the relay serves its
/// `index.html` under `/admin`).
pub const ADMIN_CONSOLE_DIR: &str = "admin-console";

/// One trunk build of an HTML target into `dist`, with the Debian wasm toolchain.
fn trunk_build(target: &[&str], dist: &std::path::Path) -> Result<()> {
    let path = format!(
        "{}:{}:/usr/bin:{}",
        paths::wasm_opt_bin().display(),
        paths::tools_bin().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut trunk = Command::new(paths::tools_bin().join("trunk"));
    trunk
        .current_dir(paths::root())
        .arg("build")
        .args(target)
        // `--release` takes an optional value: it must not be followed by the target.
        .arg("--release=true")
        .arg("--dist")
        .arg(dist)
        // rustup's proxies and the cargo that runs xtask must not leak into Debian's toolchain.
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTFLAGS")
        .env("PATH", path)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_UNSTABLE_BUILD_STD", "std,panic_abort")
        // WebAssembly SIMD (every browser since 2023: Chrome 91, Firefox 89, Safari 16.4): the
        // decoders' loops vectorise (RemoteFX at 1920x1080 about 1.7x faster); index.html tells
        // older browsers why the client cannot start.
        .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS", "-Ctarget-feature=+simd128")
        .env("CC_wasm32_unknown_unknown", "clang-22")
        .env("AR_wasm32_unknown_unknown", "llvm-ar-22")
        .env("CARGO_TARGET_DIR", paths::wasm_target());
    shell::run(&mut trunk)
}

/// Writes `X.br` (brotli -q 11) and `X.gz` (gzip -9) beside the client's wasm, js and css, which the
/// relay serves to browsers that accept them: the wasm shrinks to about a third.
fn precompress(dist: &std::path::Path) -> Result<()> {
    for entry in std::fs::read_dir(dist)? {
        let path = entry?.path();
        if !path.extension().is_some_and(|ext| ext == "wasm" || ext == "js" || ext == "css") {
            continue;
        }
        shell::run(Command::new("gzip").args(["-9", "--keep", "--force"]).arg(&path))?;
        shell::run(Command::new("brotli").args(["-q", "11", "--keep", "--force"]).arg(&path))?;
    }
    Ok(())
}

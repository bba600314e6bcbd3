//! Size of the built browser client (the `.wasm` and `.js` trunk put in the dist directory): raw, and
//! compressed as a server or CDN would send it (`gzip -9`, `brotli -q 11`, the Debian command-line
//! tools; brotli is installed with apt-get when missing). Not measured when no client was built.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Bundle {
    pub dir: PathBuf,
    pub raw: u64,
    pub gzip: u64,
    pub brotli: u64,
}

/// `$HOMEDESK_DIST`, default `<cache>/dist` (as in xtask).
pub fn dist_dir(cache: &Path) -> PathBuf {
    std::env::var_os("HOMEDESK_DIST").map(PathBuf::from).unwrap_or_else(|| cache.join("dist"))
}

/// `Ok(None)` when `dir` holds no built client.
pub fn measure(dir: &Path) -> Result<Option<Bundle>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(None) };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "wasm" || ext == "js") {
            files.push(path);
        }
    }
    if !files.iter().any(|path| path.extension().is_some_and(|ext| ext == "wasm")) {
        return Ok(None);
    }
    install_brotli().context("brotli")?;
    let mut bundle = Bundle { dir: dir.to_owned(), raw: 0, gzip: 0, brotli: 0 };
    for file in &files {
        bundle.raw += std::fs::metadata(file)?.len();
        bundle.gzip += compressed_len(Command::new("gzip").args(["-9", "-c"]).arg(file))?;
        bundle.brotli += compressed_len(Command::new("brotli").args(["-q", "11", "-c"]).arg(file))?;
    }
    Ok(Some(bundle))
}

fn compressed_len(command: &mut Command) -> Result<u64> {
    let output = command.stderr(Stdio::inherit()).output().with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!("{command:?} failed");
    }
    Ok(output.stdout.len() as u64)
}

fn install_brotli() -> Result<()> {
    let present = Command::new("brotli").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if present.is_ok_and(|status| status.success()) {
        return Ok(());
    }
    eprintln!("bench: installing brotli (apt-get)");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "brotli"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if !install() {
        let _ = Command::new("apt-get").args(["update", "-qq"]).stdout(Stdio::null()).status();
        if !install() {
            bail!("apt-get install brotli failed");
        }
    }
    Ok(())
}

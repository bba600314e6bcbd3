//! `replay`: the browser side of the bench's decode and paint rows (`cargo xtask bench`). Serves the
//! replay page (`replay.html`, its own wasm build) and the recordings `homedesk-bench record` made,
//! opens the page in headless Chromium, waits for its figures and writes them as JSON (`--out FILE`)
//! for the bench's table, which compares them with the native replay of the same files. Not a test:
//! it asserts nothing beyond the page having produced figures. A screenshot of the last replayed
//! picture is kept in the artifacts (`replay.png`).

use anyhow::{bail, Context, Result};
use homedesk_e2e::browser::Browser;
use homedesk_e2e::{free_port, wait_for};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const RECORDINGS: &str = "remotefx,planar,bitmap";
const PASSES: usize = 5;
const LIMIT: Duration = Duration::from_secs(900);

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("replay: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

struct Args {
    page: PathBuf,
    recordings: PathBuf,
    out: PathBuf,
}

fn args() -> Result<Args> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [p, page, r, recordings, o, out] if p == "--page" && r == "--recordings" && o == "--out" => {
            Ok(Args { page: page.into(), recordings: recordings.into(), out: out.into() })
        }
        _ => bail!("usage: replay --page DIST_DIR --recordings DIR --out FILE.json"),
    }
}

async fn run() -> Result<()> {
    let args = args()?;
    let site = tempfile::tempdir()?;
    link_all(&args.page, site.path(), |_| true)?;
    link_all(&args.recordings, site.path(), |name| name.ends_with(".hdrec"))?;
    let port = free_port()?;
    let _server = StaticServer::start(site.path(), port)?;

    let browser = Browser::start(1920, 1080).await?;
    let result = async {
        let url = format!("http://127.0.0.1:{port}/index.html?recordings={RECORDINGS}&passes={PASSES}");
        // The server may take a moment to listen.
        wait_for("the replay page", Duration::from_secs(20), || async {
            browser.goto(&url).await?;
            let title = browser.run_async("return document.title", vec![]).await?;
            Ok(title.as_str().is_some_and(|t| t.contains("decode")).then_some(()))
        })
        .await?;
        let text = wait_for("the replay page's figures", LIMIT, || async {
            let text = browser.run_async("return document.getElementById('result').textContent", vec![]).await?;
            Ok(text.as_str().filter(|t| !t.is_empty()).map(str::to_owned))
        })
        .await?;
        let figures: Value = serde_json::from_str(&text).context("the page's figures are not JSON")?;
        if let Some(error) = figures["error"].as_str() {
            bail!("the replay page failed: {error}");
        }
        browser.screenshot("replay").await?;
        Ok(figures)
    }
    .await;
    browser.close().await?;
    let figures = result?;
    std::fs::write(&args.out, serde_json::to_vec_pretty(&figures)?).with_context(|| format!("cannot write {}", args.out.display()))?;
    println!("{figures}");
    Ok(())
}

/// Symlinks the files of `from` (those `keep` accepts) into `into`.
fn link_all(from: &Path, into: &Path, keep: impl Fn(&str) -> bool) -> Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        if keep(&name.to_string_lossy()) {
            std::os::unix::fs::symlink(entry.path(), into.join(&name))?;
        }
    }
    Ok(())
}

/// Python's `http.server` on 127.0.0.1 (it serves `.wasm` as `application/wasm`); killed on drop.
struct StaticServer(Child);

impl StaticServer {
    fn start(dir: &Path, port: u16) -> Result<StaticServer> {
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start python3 -m http.server")?;
        Ok(StaticServer(child))
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

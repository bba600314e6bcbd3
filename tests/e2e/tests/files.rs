//! File transfer in the browser against xrdp: a file chosen in the Files panel is uploaded into the
//! browser's drive and read in the session (xrdp mounts it under ~/thinclient_drives/Browser) with the
//! same SHA-256; a large upload shows its progress and, cancelled, leaves nothing in the drive; a file
//! the session writes into the drive's download folder arrives in Chromium's download directory with
//! the same SHA-256; a file with a reserved name is refused with a message. With the HTML5 client
//! setting "file transfer" off, the panel offers no upload and the session gets no drive. A page whose
//! preferences name other folders ("Inbox", "Team/Outbox") uses those instead of Uploads/Downloads.
//! A 1 GiB upload and a 256 MiB download arrive whole while no browser process's peak memory grows by
//! more than 128 MiB (Linux `VmHWM` of every process chromedriver started).
//!
//! The universal printer is not exercised here: xrdp 0.9 redirects drives and smart cards only (its
//! chansrv ignores printer announcements); `client-core/src/redirection_tests.rs` covers it against IronRDP's
//! `RdpdrServer`.

use anyhow::{ensure, Context, Result};
use homedesk_e2e::browser::Browser;
use homedesk_e2e::relay::Relay;
use homedesk_e2e::{known_picture, required_env, wait_for, Rgb};
use std::path::Path;
use std::time::Duration;

const USER: &str = "rdpuser2";
const PASSWORD: &str = "Passw0rd!";
const UPLOAD_NAME: &str = "quarterly report ü.bin";
/// Big enough that its upload is still running when the test clicks Cancel.
const CANCELLED_SIZE: u64 = 2 << 30;

/// `script` with `sh -c` as the session's user (only they may read their FUSE mount); its stdout.
async fn in_session(script: &str) -> Result<Option<String>> {
    in_session_of(USER, script).await
}

async fn in_session_of(user: &str, script: &str) -> Result<Option<String>> {
    let output = tokio::process::Command::new("runuser")
        .args(["-u", user, "--", "sh", "-c", script])
        .output()
        .await
        .context("runuser")?;
    Ok(output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned()))
}

async fn sha256_of(path: &Path) -> Result<String> {
    let output = tokio::process::Command::new("sha256sum").arg(path).output().await?;
    ensure!(output.status.success(), "sha256sum {} failed", path.display());
    Ok(String::from_utf8_lossy(&output.stdout).split_whitespace().next().unwrap_or_default().to_owned())
}

fn first_word(text: &str) -> String {
    text.split_whitespace().next().unwrap_or_default().to_owned()
}

/// Waits up to `timeout` until the file picker's upload (the panel's first row) says "Uploaded"; a
/// failure or a cancel fails. Returns that status.
async fn wait_uploaded(browser: &Browser, timeout: Duration) -> Result<String> {
    wait_for("the upload to finish", timeout, || async {
        let status = browser.text_of("files-upload-status", Duration::from_secs(5)).await?;
        ensure!(!status.starts_with("Failed") && status != "Cancelled", "upload status: {status}");
        Ok(status.starts_with("Uploaded").then_some(status))
    })
    .await
}

/// The session reads `session_path` (once it is there) with the same SHA-256 as `local`.
async fn same_in_session(session_path: &str, local: &Path) -> Result<()> {
    let expected = sha256_of(local).await?;
    let in_drive = wait_for(&format!("{session_path} in the session"), Duration::from_secs(30), || async {
        in_session(&format!("sha256sum '{session_path}'")).await
    })
    .await?;
    ensure!(first_word(&in_drive) == expected, "the session reads another file: {in_drive} vs {expected}");
    Ok(())
}

/// The session writes `size` random bytes as `name` into `session_folder`; they arrive as the browser
/// download `name` in `downloads` (complete, no `.crdownload` left) with the same SHA-256.
async fn arrives_as_download(session_folder: &str, name: &str, size: u64, downloads: &Path) -> Result<()> {
    let written = in_session(&format!(
        "head -c {size} /dev/urandom > /tmp/homedesk-e2e-download && \
         cp /tmp/homedesk-e2e-download '{session_folder}/{name}' && \
         sha256sum /tmp/homedesk-e2e-download && rm /tmp/homedesk-e2e-download"
    ))
    .await?
    .with_context(|| format!("the session could not write into {session_folder}"))?;
    let arrived = downloads.join(name);
    wait_for("the browser download", Duration::from_secs(60), || async {
        let partial = std::fs::read_dir(downloads)?
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "crdownload"));
        Ok((arrived.exists() && !partial).then_some(()))
    })
    .await?;
    let received = sha256_of(&arrived).await?;
    ensure!(received == first_word(&written), "the download differs: {received} vs {written}");
    Ok(())
}

#[tokio::test]
async fn files_go_both_ways_between_browser_and_xrdp_session() -> Result<()> {
    let addr = required_env("RDP_TESTBED_XRDP_ADDR")?;
    let mut relay = Relay::new()?;
    relay.add_user(USER, PASSWORD)?;
    relay.add_workstation("Office PC", &addr)?;
    relay.assign(USER, "Office PC")?;
    relay.serve().await?;
    let local = tempfile::Builder::new().prefix("homedesk-files-").tempdir()?;
    let downloads = local.path().join("downloads");
    std::fs::create_dir_all(&downloads)?;
    let upload = local.path().join(UPLOAD_NAME);
    let upload_data: Vec<u8> = (0..5_000_003u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&upload, &upload_data)?;
    let cancelled = local.path().join("big.bin");
    std::fs::File::create(&cancelled)?.set_len(CANCELLED_SIZE)?;
    let reserved = local.path().join("CON.txt");
    std::fs::write(&reserved, b"reserved")?;
    let browser = Browser::start_with_downloads(1280, 1000, &downloads).await?;
    let result = async {
        browser.login(&relay.url(), USER, PASSWORD).await?;
        browser
            .wait_for_picture(&known_picture(Rgb::from_hex("#1e6fd9")), 8, Duration::from_secs(60))
            .await
            .context("the desktop did not appear")?;
        let mount = format!("/home/{USER}/thinclient_drives/Browser");
        wait_for("the drive in the session", Duration::from_secs(30), || async {
            in_session(&format!("test -d '{mount}/Uploads'")).await
        })
        .await?;

        // Upload with the file picker.
        browser.click("files-toggle").await?;
        let input = browser.wait_testid("files-input", Duration::from_secs(10)).await?;
        input.send_keys(&upload.display().to_string()).await?;
        wait_uploaded(&browser, Duration::from_secs(120)).await?;
        browser.screenshot("files-uploaded").await?;
        same_in_session(&format!("{mount}/Uploads/{UPLOAD_NAME}"), &upload).await?;

        // A reserved name is refused with a message, and nothing reaches the drive.
        input.send_keys(&reserved.display().to_string()).await?;
        let notice = browser.text_of("files-notice", Duration::from_secs(10)).await?;
        ensure!(notice.contains("CON.txt") && notice.contains("reserved"), "notice: {notice}");
        ensure!(in_session(&format!("test -e '{mount}/Uploads/CON.txt'")).await?.is_none(), "CON.txt was stored");

        // A large upload shows its progress; cancelled, nothing of it stays in the drive.
        input.send_keys(&cancelled.display().to_string()).await?;
        let progress = upload_status_once(&browser, "big.bin", " of ").await?;
        browser.screenshot("files-upload-progress").await?;
        browser
            .client
            .find(fantoccini::Locator::Css(
                "[data-testid=\"files-upload\"][data-name=\"big.bin\"] [data-testid=\"files-cancel\"]",
            ))
            .await?
            .click()
            .await?;
        ensure!(progress.contains("/s") && progress.contains("of 2.1 GB"), "progress: {progress}");
        let status = upload_status_once(&browser, "big.bin", "Cancelled").await?;
        ensure!(status == "Cancelled", "status after cancel: {status}");
        let listing = in_session(&format!("ls -A '{mount}/Uploads'")).await?.context("ls Uploads")?;
        ensure!(listing.trim() == UPLOAD_NAME, "the upload folder holds more than the finished upload: {listing:?}");
        browser.screenshot("files-upload-cancelled").await?;

        // The session saves a file in the download folder: it arrives as a browser download.
        arrives_as_download(&format!("{mount}/Downloads"), "from session.bin", 3_000_001, &downloads).await?;
        let link = browser.text_of("files-download", Duration::from_secs(5)).await?;
        ensure!(link.contains("from session.bin"), "download link: {link}");
        browser.screenshot("files-downloaded").await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("files-failure").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}

/// A page published with upload folder "Inbox" and download folder "Team/Outbox": uploads (by the file
/// picker and by drag and drop) land in that folder of the session's drive, and what the session saves in
/// the other arrives as a download.
#[tokio::test]
async fn the_pages_upload_and_download_folders_are_used() -> Result<()> {
    let addr = required_env("RDP_TESTBED_XRDP_ADDR")?;
    let mut relay = Relay::new()?;
    relay.add_user(USER, PASSWORD)?;
    relay.add_workstation("Office PC", &addr)?;
    relay.assign(USER, "Office PC")?;
    relay.cli(&["portal", "page", "set", "team", "--upload-path", "Inbox", "--download-path", "Team/Outbox"], None)?;
    relay.cli(&["portal", "page", "publish", "team"], None)?;
    relay.serve().await?;
    let local = tempfile::Builder::new().prefix("homedesk-folders-").tempdir()?;
    let downloads = local.path().join("downloads");
    std::fs::create_dir_all(&downloads)?;
    let upload = local.path().join("for the inbox.bin");
    std::fs::write(&upload, (0..1_500_007u32).map(|i| (i.wrapping_mul(40_503) >> 7) as u8).collect::<Vec<u8>>())?;
    let browser = Browser::start_with_downloads(1280, 1000, &downloads).await?;
    let result = async {
        browser.login(&format!("{}team.html", relay.url()), USER, PASSWORD).await?;
        browser
            .wait_for_picture(&known_picture(Rgb::from_hex("#1e6fd9")), 8, Duration::from_secs(60))
            .await
            .context("the desktop did not appear")?;
        let mount = format!("/home/{USER}/thinclient_drives/Browser");
        wait_for("the page's folders in the session's drive", Duration::from_secs(30), || async {
            in_session(&format!("test -d '{mount}/Inbox' && test -d '{mount}/Team/Outbox' && echo yes")).await
        })
        .await?;
        let listing = in_session(&format!("ls -A '{mount}'")).await?.context("ls the drive")?;
        ensure!(!listing.contains("Uploads") && !listing.contains("Downloads"), "default folders made: {listing:?}");

        browser.click("files-toggle").await?;
        let input = browser.wait_testid("files-input", Duration::from_secs(10)).await?;
        input.send_keys(&upload.display().to_string()).await?;
        wait_uploaded(&browser, Duration::from_secs(120)).await?;
        same_in_session(&format!("{mount}/Inbox/for the inbox.bin"), &upload).await?;

        // Drag and drop: a file dropped on the panel's zone. The page gets a `drop` event whose DataTransfer
        // holds a File, as from a real drag (WebDriver cannot drag from the desktop's file manager).
        let dropped = local.path().join("dropped.bin");
        std::fs::write(&dropped, (0..300_001u32).map(|i| (i.wrapping_mul(7).wrapping_add(3) & 255) as u8).collect::<Vec<u8>>())?;
        browser
            .client
            .execute(
                "const bytes = new Uint8Array(300001);
                 for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 3) & 255;
                 const transfer = new DataTransfer();
                 transfer.items.add(new File([bytes], 'dropped ü.bin'));
                 const zone = document.querySelector('[data-testid=\"files-drop\"]');
                 for (const type of ['dragenter', 'dragover', 'drop']) {
                     zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
                 }",
                vec![],
            )
            .await?;
        let status = upload_status_once(&browser, "dropped ü.bin", "Uploaded").await?;
        ensure!(status.starts_with("Uploaded"), "the dropped file's status: {status}");
        same_in_session(&format!("{mount}/Inbox/dropped ü.bin"), &dropped).await?;
        browser.screenshot("files-folders-uploaded").await?;

        arrives_as_download(&format!("{mount}/Team/Outbox"), "from the outbox.bin", 700_001, &downloads).await?;
        browser.screenshot("files-folders-downloaded").await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("files-folders-failure").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}

/// Waits (in the page, without polling delays) until the upload row of `name` shows a status
/// containing `wanted`; that status.
async fn upload_status_once(browser: &Browser, name: &str, wanted: &str) -> Result<String> {
    let value = browser
        .run_async(
            "const [name, wanted] = arguments;
             const status = () => {
                 const row = [...document.querySelectorAll('[data-testid=\"files-upload\"]')]
                     .find(r => r.dataset.name === name);
                 const text = row ? row.querySelector('[data-testid=\"files-upload-status\"]').textContent : '';
                 return text.includes(wanted) ? text : null;
             };
             return await new Promise(done => {
                 const found = status();
                 if (found) { done(found); return; }
                 const observer = new MutationObserver(() => {
                     const text = status();
                     if (text) { observer.disconnect(); done(text); }
                 });
                 observer.observe(document.body, { subtree: true, childList: true, characterData: true });
             });",
            vec![name.into(), wanted.into()],
        )
        .await
        .with_context(|| format!("the upload of {name} never showed {wanted:?}"))?;
    value.as_str().map(str::to_owned).context("upload status is not text")
}

#[tokio::test]
async fn file_transfer_off_offers_no_upload_and_no_drive() -> Result<()> {
    const OTHER_USER: &str = "rdpuser1";
    let addr = required_env("RDP_TESTBED_XRDP_ADDR")?;
    let mut relay = Relay::new()?;
    relay.add_user(OTHER_USER, PASSWORD)?;
    relay.add_workstation("Office PC", &addr)?;
    relay.assign(OTHER_USER, "Office PC")?;
    relay.cli(&["client-settings", "set", "file_transfer", "off"], None)?;
    relay.serve().await?;
    let browser = Browser::start(1280, 1000).await?;
    let result = async {
        browser.login(&relay.url(), OTHER_USER, PASSWORD).await?;
        browser
            .wait_for_picture(&known_picture(Rgb::from_hex("#1e6fd9")), 8, Duration::from_secs(60))
            .await
            .context("the desktop did not appear")?;
        let label = browser.text_of("files-toggle", Duration::from_secs(5)).await?;
        ensure!(label == "Print jobs", "menu button: {label}");
        browser.click("files-toggle").await?;
        let text = browser.text_of("files-disabled", Duration::from_secs(10)).await?;
        ensure!(text.contains("File transfer is turned off"), "panel: {text}");
        ensure!(
            browser.client.find(fantoccini::Locator::Css("[data-testid=\"files-input\"]")).await.is_err(),
            "upload offered"
        );
        browser.screenshot("files-transfer-off").await?;
        // chansrv's mount exists in every session; no drive "Browser" in it.
        let drives = wait_for("the session's thinclient_drives", Duration::from_secs(30), || async {
            in_session_of(OTHER_USER, &format!("ls -A /home/{OTHER_USER}/thinclient_drives")).await
        })
        .await?;
        ensure!(!drives.contains("Browser"), "the session got the browser's drive: {drives:?}");
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("files-transfer-off-failure").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}

/// A file of pseudo-random bytes (xorshift, so nothing compresses it away), written 1 MiB at a time.
fn write_noise(path: &Path, size: u64, seed: u64) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state = seed | 1;
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let take = left.min(block.len() as u64) as usize;
        out.write_all(&block[..take])?;
        left -= take as u64;
    }
    out.flush()?;
    Ok(())
}

/// Sizes of the big transfers: a gibibyte up, and down as much as the session writes in the time CI can
/// give (xrdp's drive sends a file in small writes, each answered before the next).
const GIB: u64 = 1 << 30;
const BIG_DOWNLOAD: u64 = 256 << 20;
/// How much any browser process's peak memory may grow while both pass: far below either file, so
/// neither was held whole.
const PEAK_GROWTH_LIMIT: u64 = 128 << 20;

#[tokio::test]
async fn a_gigabyte_streams_both_ways_without_being_held_in_memory() -> Result<()> {
    let addr = required_env("RDP_TESTBED_XRDP_ADDR")?;
    let mut relay = Relay::new()?;
    relay.add_user(USER, PASSWORD)?;
    relay.add_workstation("Office PC", &addr)?;
    relay.assign(USER, "Office PC")?;
    relay.serve().await?;
    let local = tempfile::Builder::new().prefix("homedesk-gigabyte-").tempdir()?;
    let downloads = local.path().join("downloads");
    std::fs::create_dir_all(&downloads)?;
    let upload = local.path().join("gigabyte.bin");
    write_noise(&upload, GIB, 0x9e37_79b9_7f4a_7c15)?;
    let expected = sha256_of(&upload).await?;
    let browser = Browser::start_with_downloads(1280, 1000, &downloads).await?;
    let result = async {
        browser.login(&relay.url(), USER, PASSWORD).await?;
        browser
            .wait_for_picture(&known_picture(Rgb::from_hex("#1e6fd9")), 8, Duration::from_secs(60))
            .await
            .context("the desktop did not appear")?;
        let mount = format!("/home/{USER}/thinclient_drives/Browser");
        wait_for("the drive in the session", Duration::from_secs(30), || async {
            in_session(&format!("test -d '{mount}/Uploads' && echo yes")).await
        })
        .await?;
        let before = browser.peak_memory()?;

        // Up: the page copies the file into its drive; the session reads it whole.
        browser.click("files-toggle").await?;
        let input = browser.wait_testid("files-input", Duration::from_secs(10)).await?;
        let started = std::time::Instant::now();
        input.send_keys(&upload.display().to_string()).await?;
        let status = wait_uploaded(&browser, Duration::from_secs(600)).await?;
        let copied = started.elapsed();
        ensure!(status == "Uploaded (1.1 GB)", "status: {status}");
        let started = std::time::Instant::now();
        let in_drive = in_session(&format!("sha256sum '{mount}/Uploads/gigabyte.bin'"))
            .await?
            .context("the session cannot read the uploaded gigabyte")?;
        ensure!(first_word(&in_drive) == expected, "the session reads another file: {in_drive} vs {expected}");
        let read = started.elapsed();
        eprintln!(
            "1 GiB up: copied into the page's drive in {:.1} s ({:.1} MB/s), read by the session in {:.1} s ({:.1} MB/s)",
            copied.as_secs_f64(),
            GIB as f64 / 1e6 / copied.as_secs_f64(),
            read.as_secs_f64(),
            GIB as f64 / 1e6 / read.as_secs_f64()
        );

        // Down: the session writes a big file into the download folder; it arrives whole.
        let started = std::time::Instant::now();
        arrives_as_download(&format!("{mount}/Downloads"), "big download.bin", BIG_DOWNLOAD, &downloads).await?;
        let down = started.elapsed();
        eprintln!(
            "{} MiB down in {:.1} s ({:.1} MB/s)",
            BIG_DOWNLOAD >> 20,
            down.as_secs_f64(),
            BIG_DOWNLOAD as f64 / 1e6 / down.as_secs_f64()
        );
        browser.screenshot("files-gigabyte").await?;

        let after = browser.peak_memory()?;
        ensure!(after.iter().any(|(_, kind, _)| kind == "renderer"), "no renderer process found: {after:?}");
        let mut worst = (String::new(), 0u64);
        for (pid, kind, peak) in &after {
            let start = before.iter().find(|(p, _, _)| p == pid).map_or(0, |(_, _, bytes)| *bytes);
            eprintln!("peak resident memory of the {kind} process {pid}: {} MiB before, {} MiB after", start >> 20, peak >> 20);
            if peak.saturating_sub(start) > worst.1 {
                worst = (format!("{kind} process {pid}"), peak.saturating_sub(start));
            }
        }
        ensure!(worst.1 < PEAK_GROWTH_LIMIT, "the {} grew by {} MiB: a file was held in memory", worst.0, worst.1 >> 20);
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("files-gigabyte-failure").await;
        eprintln!("relay log:\n{}", relay.log());
    }
    browser.close().await?;
    result
}

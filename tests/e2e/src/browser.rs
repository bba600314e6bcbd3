//! Headless Chromium through chromedriver (WebDriver), with helpers that look at the page the way a
//! person does: visible text by `data-testid`, canvas pixels, screenshots.

use crate::{artifacts_dir, free_port, wait_for, Rgb};
use anyhow::{bail, Context, Result};
use fantoccini::actions::{Actions, InputSource, MouseActions, PointerAction, TouchActions};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The emulated phone's screen in CSS pixels (portrait).
pub const PHONE: (u32, u32) = (390, 844);

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium with a window of the given size.
    pub async fn start(width: u32, height: u32) -> Result<Browser> {
        Self::start_with(width, height, None, None).await
    }

    /// A phone: Chromium's mobile emulation (chromedriver `mobileEmulation`: a 390x844 CSS px touch screen
    /// at device pixel ratio 2, mobile viewport, an Android Chrome user agent). Touches are real touch
    /// events, sent through WebDriver touch pointer actions (`tap`, `long_press`, `two_finger_drag`).
    pub async fn start_phone() -> Result<Browser> {
        let emulation = json!({
            "deviceMetrics": { "width": PHONE.0, "height": PHONE.1, "pixelRatio": 2.0, "touch": true, "mobile": true },
            "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                          Chrome/120.0.0.0 Mobile Safari/537.36",
        });
        Self::start_with(PHONE.0, PHONE.1, Some(emulation), None).await
    }

    /// Like [`Browser::start`]; downloads go to `downloads` without a prompt.
    pub async fn start_with_downloads(width: u32, height: u32, downloads: &std::path::Path) -> Result<Browser> {
        Self::start_with(width, height, None, Some(downloads)).await
    }

    async fn start_with(
        width: u32,
        height: u32,
        mobile_emulation: Option<Value>,
        downloads: Option<&std::path::Path>,
    ) -> Result<Browser> {
        let port = free_port()?;
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start chromedriver (install chromium-driver: cargo xtask setup)")?;
        let profile = tempfile::Builder::new().prefix("homedesk-chromium-").tempdir()?;
        let capabilities = json!({
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--ignore-certificate-errors",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        });
        let mut capabilities = capabilities;
        if let Some(emulation) = mobile_emulation {
            capabilities["goog:chromeOptions"]["mobileEmulation"] = emulation;
        }
        if let Some(downloads) = downloads {
            capabilities["goog:chromeOptions"]["prefs"] = json!({
                "download.default_directory": downloads.display().to_string(),
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
            });
        }
        let Value::Object(capabilities) = capabilities else { bail!("capabilities must be an object") };
        let url = format!("http://127.0.0.1:{port}");
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = wait_for("chromedriver to accept a session", Duration::from_secs(30), || {
            let (connector, capabilities, url) = (connector.clone(), capabilities.clone(), url.clone());
            async move {
                match ClientBuilder::new(connector).capabilities(capabilities).connect(&url).await {
                    Ok(client) => Ok(Some(client)),
                    Err(error) => Err(error.into()),
                }
            }
        })
        .await?;
        Ok(Browser { client, driver, _profile: profile })
    }

    /// Grants the page the clipboard permissions a user gives at Chromium's prompt (WebDriver
    /// "Set Permission"; chromedriver applies it to the current origin, so call it after `goto`).
    pub async fn grant_clipboard(&self) -> Result<()> {
        for name in ["clipboard-read", "clipboard-write"] {
            self.client
                .issue_cmd(SetPermission { name })
                .await
                .with_context(|| format!("cannot grant {name}"))?;
        }
        Ok(())
    }

    /// Runs a script that returns a promise and waits for its value (e.g. the Clipboard API).
    pub async fn run_async(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        let wrapped = format!(
            "const done = arguments[arguments.length - 1];
             (async () => {{ {script} }})(...arguments).then(v => done({{ ok: v }}), e => done({{ err: String(e) }}));"
        );
        let value = self.client.execute_async(&wrapped, args).await?;
        match value.get("err") {
            Some(error) => bail!("script failed: {error}"),
            None => Ok(value.get("ok").cloned().unwrap_or(Value::Null)),
        }
    }

    pub async fn goto(&self, url: &str) -> Result<()> {
        self.client.goto(url).await.with_context(|| format!("cannot open {url}"))
    }

    fn testid(id: &str) -> String {
        format!("[data-testid=\"{id}\"]")
    }

    /// Waits until an element with this `data-testid` exists.
    pub async fn wait_testid(&self, id: &str, timeout: Duration) -> Result<fantoccini::elements::Element> {
        let selector = Self::testid(id);
        wait_for(&format!("element {id}"), timeout, || {
            let selector = selector.clone();
            async move { Ok(self.client.find(Locator::Css(&selector)).await.ok()) }
        })
        .await
    }

    pub async fn type_into(&self, id: &str, text: &str) -> Result<()> {
        let element = self.wait_testid(id, Duration::from_secs(30)).await?;
        element.clear().await?;
        element.send_keys(text).await?;
        Ok(())
    }

    pub async fn click(&self, id: &str) -> Result<()> {
        self.wait_testid(id, Duration::from_secs(30)).await?.click().await?;
        Ok(())
    }

    /// The portal's login: fills the form and submits it.
    pub async fn login(&self, url: &str, username: &str, password: &str) -> Result<()> {
        self.goto(url).await?;
        self.type_into("login-username", username).await?;
        self.type_into("login-password", password).await?;
        self.click("login-submit").await
    }

    /// Text of the element with this `data-testid`, once it appears.
    pub async fn text_of(&self, id: &str, timeout: Duration) -> Result<String> {
        Ok(self.wait_testid(id, timeout).await?.text().await?)
    }

    /// Size of the desktop canvas in desktop pixels.
    pub async fn canvas_size(&self) -> Result<(u32, u32)> {
        let value = self
            .client
            .execute("const c = document.querySelector('[data-testid=\"desktop-canvas\"]'); return c ? [c.width, c.height] : null;", vec![])
            .await?;
        let size = value.as_array().context("no desktop canvas")?;
        Ok((as_u32(size.first())?, as_u32(size.get(1))?))
    }

    /// The colour a person sees at desktop pixel (x, y) of the canvas.
    pub async fn canvas_pixel(&self, x: u32, y: u32) -> Result<Rgb> {
        let value = self
            .client
            .execute(
                "const c = document.querySelector('[data-testid=\"desktop-canvas\"]');
                 const d = c.getContext('2d').getImageData(arguments[0], arguments[1], 1, 1).data;
                 return [d[0], d[1], d[2]];",
                vec![json!(x), json!(y)],
            )
            .await?;
        let rgb = value.as_array().context("no pixel")?;
        let channel = |i: usize| as_u32(rgb.get(i)).map(|v| v.min(255) as u8);
        Ok(Rgb(channel(0)?, channel(1)?, channel(2)?))
    }

    /// A digest of the dark pixels (text) of a canvas region: what a reader sees, blind to the small
    /// colour shifts of lossy codecs, so the same text after a full repaint gives the same digest.
    pub async fn canvas_text_digest(&self, x: u32, y: u32, w: u32, h: u32) -> Result<u64> {
        self.digest(x, y, w, h, true).await
    }

    /// A digest of every channel of a canvas region, to notice that the picture there changed.
    pub async fn canvas_region_digest(&self, x: u32, y: u32, w: u32, h: u32) -> Result<u64> {
        self.digest(x, y, w, h, false).await
    }

    async fn digest(&self, x: u32, y: u32, w: u32, h: u32, text_only: bool) -> Result<u64> {
        let value = self
            .client
            .execute(
                "const c = document.querySelector('[data-testid=\"desktop-canvas\"]');
                 const d = c.getContext('2d').getImageData(arguments[0], arguments[1], arguments[2], arguments[3]).data;
                 let h = 7;
                 for (let i = 0; i < d.length; i += 4) {
                   const px = arguments[4] ? ((d[i] + d[i + 1] + d[i + 2]) < 384 ? 1 : 0)
                                           : (d[i] * 65536 + d[i + 1] * 256 + d[i + 2]);
                   h = (h * 31 + px * (i / 4 % 1009 + 1)) % 2147483647;
                 }
                 return h;",
                vec![json!(x), json!(y), json!(w), json!(h), json!(text_only)],
            )
            .await?;
        value.as_u64().context("no digest")
    }

    /// Moves the real (WebDriver) mouse over desktop pixel (x, y) of the canvas.
    pub async fn move_mouse_to_desktop(&self, x: u32, y: u32) -> Result<()> {
        let value = self
            .client
            .execute(
                "const c = document.querySelector('[data-testid=\"desktop-canvas\"]');
                 const r = c.getBoundingClientRect();
                 return [r.left + (arguments[0] + 0.5) * r.width / c.width, r.top + (arguments[1] + 0.5) * r.height / c.height];",
                vec![json!(x), json!(y)],
            )
            .await?;
        let point = value.as_array().context("no canvas")?;
        let coordinate = |i: usize| point.get(i).and_then(Value::as_f64).context("not a number");
        let mouse = MouseActions::new("mouse".into())
            .then(PointerAction::MoveTo { duration: None, x: coordinate(0)?.round(), y: coordinate(1)?.round() });
        self.client.perform_actions(mouse).await?;
        Ok(())
    }

    /// The page position (CSS px) showing desktop pixel (x, y), through the canvas's scaling and zoom.
    pub async fn desktop_to_page(&self, x: u32, y: u32) -> Result<(f64, f64)> {
        let value = self
            .client
            .execute(
                "const c = document.querySelector('[data-testid=\"desktop-canvas\"]');
                 const r = c.getBoundingClientRect();
                 return [r.left + (arguments[0] + 0.5) * r.width / c.width, r.top + (arguments[1] + 0.5) * r.height / c.height];",
                vec![json!(x), json!(y)],
            )
            .await?;
        let point = value.as_array().context("no canvas")?;
        let coordinate = |i: usize| point.get(i).and_then(Value::as_f64).context("not a number");
        Ok((coordinate(0)?, coordinate(1)?))
    }

    /// One finger down at page position (x, y), held for `hold`, then lifted (WebDriver touch actions).
    pub async fn touch_hold(&self, x: f64, y: f64, hold: Duration) -> Result<()> {
        let finger = TouchActions::new("finger".into())
            .then(PointerAction::MoveTo { duration: None, x: x.round(), y: y.round() })
            .then(PointerAction::Down { button: 0 })
            .then(PointerAction::Pause { duration: hold })
            .then(PointerAction::Up { button: 0 });
        self.client.perform_actions(finger).await?;
        self.client.release_actions().await?;
        Ok(())
    }

    pub async fn tap(&self, x: f64, y: f64) -> Result<()> {
        self.touch_hold(x, y, Duration::from_millis(50)).await
    }

    /// Two fingers `spread` px apart around (x, y) move together by (dx, dy) over `duration`, then lift.
    pub async fn two_finger_drag(&self, (x, y): (f64, f64), spread: f64, (dx, dy): (f64, f64), duration: Duration) -> Result<()> {
        let finger = |name: &str, fx: f64| {
            TouchActions::new(name.into())
                .then(PointerAction::MoveTo { duration: None, x: fx.round(), y: y.round() })
                .then(PointerAction::Down { button: 0 })
                .then(PointerAction::MoveTo { duration: Some(duration), x: (fx + dx).round(), y: (y + dy).round() })
                .then(PointerAction::Up { button: 0 })
        };
        let actions = Actions::from(finger("finger1", x - spread / 2.0)).and(finger("finger2", x + spread / 2.0));
        self.client.perform_actions(actions).await?;
        self.client.release_actions().await?;
        Ok(())
    }

    /// A Chrome DevTools Protocol command through chromedriver (`goog/cdp/execute`); its result.
    pub async fn cdp(&self, cmd: &'static str, params: Value) -> Result<Value> {
        let result = self.client.issue_cmd(Cdp { cmd, params }).await.with_context(|| format!("CDP {cmd}"))?;
        Ok(result)
    }

    /// Fingers on the touch screen as a phone reports them: every frame lists each finger's page position
    /// (CSS px) and is one touch event with all of them (CDP `Input.dispatchTouchEvent`: the first frame
    /// touches down, the others move, then every finger lifts). Unlike WebDriver actions, fingers that move
    /// together arrive together.
    pub async fn touch_frames(&self, frames: &[Vec<(f64, f64)>]) -> Result<()> {
        for (i, frame) in frames.iter().enumerate() {
            let points: Vec<Value> =
                frame.iter().enumerate().map(|(id, (x, y))| json!({ "x": x, "y": y, "id": id })).collect();
            let kind = if i == 0 { "touchStart" } else { "touchMove" };
            self.cdp("Input.dispatchTouchEvent", json!({ "type": kind, "touchPoints": points })).await?;
        }
        self.cdp("Input.dispatchTouchEvent", json!({ "type": "touchEnd", "touchPoints": [] })).await?;
        Ok(())
    }

    /// Types on the desktop canvas with real WebDriver key events (`\n` is Enter).
    pub async fn type_on_desktop(&self, text: &str) -> Result<()> {
        let canvas = self.wait_testid("desktop-canvas", Duration::from_secs(5)).await?;
        let keys: String = text.chars().map(|c| if c == '\n' { '\u{E007}' } else { c }).collect();
        canvas.send_keys(&keys).await?;
        Ok(())
    }

    /// Waits until every sample point shows its colour (within `tolerance` per channel).
    pub async fn wait_for_picture(&self, samples: &[((u32, u32), Rgb)], tolerance: u8, timeout: Duration) -> Result<()> {
        let last = std::cell::RefCell::new(Vec::new());
        let result = wait_for("the desktop picture", timeout, || async {
            let mut seen = Vec::new();
            for ((x, y), _) in samples {
                seen.push(self.canvas_pixel(*x, *y).await?);
            }
            let ok = samples.iter().zip(&seen).all(|((_, want), got)| got.near(*want, tolerance));
            *last.borrow_mut() = seen;
            Ok(ok.then_some(()))
        })
        .await;
        result.with_context(|| format!("expected {samples:?}, last seen {:?}", last.borrow()))
    }

    /// Saves a screenshot of the whole page as `<artifacts>/<name>.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> Result<std::path::PathBuf> {
        let png = self.client.screenshot().await?;
        let path = artifacts_dir().join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// The peak resident memory (Linux `VmHWM`) of each of this browser's processes (everything
    /// chromedriver started: the browser, renderers, the GPU and storage services), largest first, with
    /// each process's pid and `--type` ("browser" for the main one). What a person's task manager would
    /// show at its worst, whatever inside the process held the memory (wasm, JavaScript, blobs).
    pub fn peak_memory(&self) -> Result<Vec<(u32, String, u64)>> {
        let mut parents = std::collections::HashMap::new();
        for entry in std::fs::read_dir("/proc")?.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // `pid (comm) state ppid ...`: comm may hold spaces, so split after its closing parenthesis.
            let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parents.insert(pid, ppid);
            }
        }
        let root = self.driver.id();
        let descends = |mut pid: u32| loop {
            match parents.get(&pid) {
                Some(&parent) if parent == root => return true,
                Some(&parent) if parent > 1 => pid = parent,
                _ => return false,
            }
        };
        let mut peaks = Vec::new();
        for &pid in parents.keys().filter(|&&pid| descends(pid)) {
            let (Ok(status), Ok(cmdline)) = (
                std::fs::read_to_string(format!("/proc/{pid}/status")),
                std::fs::read_to_string(format!("/proc/{pid}/cmdline")),
            ) else {
                continue;
            };
            let peak_kb = status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0);
            // Chromium rewrites its children's command lines into one space-separated title.
            let args: Vec<&str> = cmdline.split(['\0', ' ']).collect();
            let flag = |name: &str| args.iter().find_map(|arg| arg.strip_prefix(name));
            let kind = flag("--utility-sub-type=").or(flag("--type=")).unwrap_or("browser").to_owned();
            peaks.push((pid, kind, peak_kb * 1024));
        }
        peaks.sort_by_key(|peak| std::cmp::Reverse(peak.2));
        Ok(peaks)
    }

    /// Ends the WebDriver session (so Chromium exits) and stops chromedriver.
    pub async fn close(mut self) -> Result<()> {
        let result = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        result.map_err(Into::into)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// WebDriver "Set Permission" (W3C Permissions spec), which chromedriver implements.
#[derive(Debug)]
struct SetPermission {
    name: &'static str,
}

impl fantoccini::wd::WebDriverCompatibleCommand for SetPermission {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/permissions", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "descriptor": { "name": self.name }, "state": "granted" });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// chromedriver's "execute a CDP command" extension.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/goog/cdp/execute", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (http::Method::POST, Some(body.to_string()))
    }
}

fn as_u32(value: Option<&Value>) -> Result<u32> {
    value.and_then(Value::as_u64).map(|v| v as u32).context("not a number")
}

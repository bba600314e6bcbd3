//! The client half's figures (login click → desktop in headless Chromium against xfreerdp → desktop),
//! measured by `first-frame` (tests/e2e/src/bin/first_frame.rs) just before this bench in the same
//! `cargo xtask bench` run and handed over as JSON through `HOMEDESK_BENCH_FIRST_FRAME`.

use crate::report::Row;
use anyhow::{Context, Result};
use serde_json::Value;

/// Rows and notes, or a note saying why there are none.
pub fn rows() -> Result<(Vec<Row>, Vec<String>)> {
    let Some(path) = std::env::var_os("HOMEDESK_BENCH_FIRST_FRAME") else {
        return Ok((Vec::new(), vec!["Login → first frame not measured: run the whole bench with `cargo xtask bench` \
                                    (it needs Chromium and the RDP testbed)."
            .into()]));
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.to_string_lossy()))?;
    let json: Value = serde_json::from_str(&text).context("first-frame figures")?;
    let series = |name: &str| -> Result<Vec<f64>> {
        let values = json[name].as_array().with_context(|| format!("no {name}"))?;
        values.iter().map(|v| v.as_f64().context("not a number")).collect()
    };
    let (browser, native) = (median(series("browser_ms")?), median(series("xfreerdp_ms")?));
    let rounds = json["rounds"].as_u64().unwrap_or(0);
    let row = Row {
        metric: format!("login click → desktop on screen, ms, median of {rounds} (lower is better)"),
        homedesk: browser,
        peer: peer_name(json["xfreerdp_version"].as_str().unwrap_or("")),
        peer_figure: native,
        met: Some(browser <= 1.1 * native),
        target: "≤ 1.1× native".into(),
    };
    let note = format!(
        "Login → desktop: headless Chromium (portal sign-in with argon2id, ticket, WebSocket through the relay, TLS \
         and RDP in wasm) from the Sign in click until the canvas shows the testbed's background at (50, 50), read \
         in a requestAnimationFrame loop; xfreerdp from its process start until its window shows that colour, read \
         with xwd in a loop (one xwd takes tens of ms, so xfreerdp's figure may be late by up to one read). Same \
         xrdp session reattached by both at {}x{}, alternating rounds. Browser ms: {}; xfreerdp ms: {}.",
        json["desktop"][0],
        json["desktop"][1],
        list(&series("browser_ms")?),
        list(&series("xfreerdp_ms")?),
    );
    Ok((vec![row], vec![note]))
}

/// "xfreerdp 2.10.0" from "This is FreeRDP version 2.10.0 (…)".
fn peer_name(version_line: &str) -> String {
    match version_line.split("version ").nth(1).and_then(|rest| rest.split_whitespace().next()) {
        Some(version) => format!("xfreerdp {version}"),
        None => "xfreerdp".into(),
    }
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

pub fn list(values: &[f64]) -> String {
    values.iter().map(|v| format!("{v:.0}")).collect::<Vec<_>>().join(", ")
}

//! The result table (markdown), printed to stdout and written to `~/.cache/homedesk/bench/latest.md`.

use anyhow::{Context, Result};
use std::path::Path;

pub struct Row {
    pub metric: String,
    pub homedesk: f64,
    pub peer: String,
    pub peer_figure: f64,
    /// Whether the target (`target` text) is met, `None` for reference rows.
    pub met: Option<bool>,
    pub target: String,
}

pub fn render(rows: &[Row], notes: &[String]) -> String {
    let mut out = format!("Homedesk relay benchmark, {} UTC, {} cores\n\n", now_utc(), cores());
    out.push_str("| metric | homedesk | peer | peer figure | ratio | target | met? |\n");
    out.push_str("|---|---:|---|---:|---:|---|---|\n");
    for row in rows {
        let ratio = if row.peer_figure != 0.0 { row.homedesk / row.peer_figure } else { f64::NAN };
        let met = match row.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.2}× | {} | {} |\n",
            row.metric,
            figure(row.homedesk),
            row.peer,
            figure(row.peer_figure),
            ratio,
            row.target,
            met
        ));
    }
    if !notes.is_empty() {
        out.push('\n');
        for note in notes {
            out.push_str(&format!("- {note}\n"));
        }
    }
    out
}

pub fn write(text: &str, file: &Path) -> Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(file, text).with_context(|| format!("cannot write {}", file.display()))
}

fn figure(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() < 10.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.1}")
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// `YYYY-MM-DD HH:MM` (UTC) from the system clock (civil-from-days, H. Hinnant's algorithm).
fn now_utc() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}", rest / 3600, rest % 3600 / 60)
}

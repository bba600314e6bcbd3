//! The workstation's sound in the browser, with xrdp: a 440 Hz tone played in the session (into
//! chansrv's audio socket, as pulseaudio-module-xrdp would; Debian 12 ships no such module) reaches
//! Web Audio as the same samples, scheduled back to back on a running AudioContext that the login
//! click unlocked, and an AnalyserNode tapping what is played hears it. With the client setting
//! `sounds` off, xrdp gets no sound channel (chansrv opens no audio socket) and nothing is played.
//!
//! The page's own Web Audio calls are observed by wrapping `BaseAudioContext.prototype.createGain`
//! and `AudioBufferSourceNode.prototype.start` before the login (no hooks in the client itself).

use anyhow::{ensure, Context, Result};
use homedesk_e2e::browser::Browser;
use homedesk_e2e::relay::Relay;
use homedesk_e2e::session_x::session_display;
use homedesk_e2e::{known_picture, required_env, wait_for, Rgb};
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

const USER: &str = "rdpuser3";
const PASSWORD: &str = "Passw0rd!";

/// Records every AudioContext the page plays on (its output gain is made from it) and every buffer
/// it starts (as 16-bit samples), and taps what is played with an AnalyserNode. (wasm-bindgen keeps
/// its own reference to the `AudioContext` constructor, so methods are wrapped, not the constructor.)
const OBSERVE: &str = r#"
window.__hdContexts = [];
window.__hdPlayed = [];
const createGain = BaseAudioContext.prototype.createGain;
BaseAudioContext.prototype.createGain = function (...args) {
    if (!window.__hdContexts.includes(this)) {
        this.__hdAnalyser = this.createAnalyser();
        this.__hdAnalyser.fftSize = 2048;
        window.__hdContexts.push(this);
    }
    return createGain.apply(this, args);
};
const start = AudioBufferSourceNode.prototype.start;
AudioBufferSourceNode.prototype.start = function (when, ...rest) {
    const buffer = this.buffer;
    const channels = [];
    for (let c = 0; c < buffer.numberOfChannels; c++) {
        channels.push(Array.from(buffer.getChannelData(c), (x) => Math.round(x * 32768)));
    }
    window.__hdPlayed.push({ rate: buffer.sampleRate, when, duration: buffer.duration,
                             state: this.context.state, channels });
    if (this.context.__hdAnalyser) this.connect(this.context.__hdAnalyser);
    return start.call(this, when, ...rest);
};
"#;

/// 0.5 s of a 440 Hz sine at 44.1 kHz, stereo (right at half amplitude), interleaved.
fn tone() -> Vec<i16> {
    (0..22_050)
        .flat_map(|n| {
            let value = (2.0 * std::f64::consts::PI * 440.0 * f64::from(n) / 44_100.0).sin();
            [(value * 20_000.0) as i16, (value * 10_000.0) as i16]
        })
        .collect()
}

/// chansrv's audio socket for the session on `display` (":10"), there while a client has `rdpsnd`.
fn audio_socket(display: &str) -> String {
    format!("/run/xrdp/sockdir/xrdp_chansrv_audio_out_socket_{}", display.trim_start_matches(':'))
}

/// Plays 44.1 kHz stereo PCM in the xrdp session on `display` through chansrv's audio socket:
/// messages of {code 0, length} + PCM, then {code 1} (close).
fn play_in_session(display: &str, pcm: &[i16]) -> Result<()> {
    use std::os::unix::net::UnixStream;
    let path = audio_socket(display);
    let mut socket = UnixStream::connect(&path).with_context(|| format!("cannot open {path}"))?;
    let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
    for chunk in bytes.chunks(4096) {
        let mut message = Vec::with_capacity(chunk.len() + 8);
        message.extend_from_slice(&0u32.to_le_bytes());
        message.extend_from_slice(&(u32::try_from(chunk.len())? + 8).to_le_bytes());
        message.extend_from_slice(chunk);
        socket.write_all(&message)?;
        std::thread::sleep(Duration::from_millis(20));
    }
    socket.write_all(&1u32.to_le_bytes())?;
    socket.write_all(&8u32.to_le_bytes())?;
    Ok(())
}

async fn login_observed(browser: &Browser, relay: &Relay) -> Result<()> {
    browser.goto(&relay.url()).await?;
    browser.client.execute(OBSERVE, vec![]).await?;
    browser.type_into("login-username", USER).await?;
    browser.type_into("login-password", PASSWORD).await?;
    browser.click("login-submit").await?;
    browser
        .wait_for_picture(&known_picture(Rgb::from_hex("#1e6fd9")), 8, Duration::from_secs(60))
        .await
        .context("the desktop did not appear")
}

fn relay_with_xrdp() -> Result<Relay> {
    let addr = required_env("RDP_TESTBED_XRDP_ADDR")?;
    let relay = Relay::new()?;
    relay.add_user(USER, PASSWORD)?;
    relay.add_workstation("Office PC", &addr)?;
    relay.assign(USER, "Office PC")?;
    Ok(relay)
}

#[tokio::test]
async fn a_tone_in_the_session_plays_in_the_browser_as_the_same_samples() -> Result<()> {
    let mut relay = relay_with_xrdp()?;
    relay.serve().await?;
    let browser = Browser::start(1280, 900).await?;
    let result = async {
        login_observed(&browser, &relay).await?;
        let display = session_display(USER)?;
        // chansrv opens the sound channel just after the desktop appears.
        let socket = audio_socket(&display);
        wait_for("chansrv's audio socket", Duration::from_secs(30), || async {
            Ok(std::path::Path::new(&socket).exists().then_some(()))
        })
        .await?;

        let tone = tone();
        let mut played = tone.clone();
        played.extend(std::iter::repeat_n(0i16, 44_100));
        let source = std::thread::spawn(move || play_in_session(&display, &played));
        // While it plays, the analyser hears the tone (the page makes its output at the first wave).
        let peak = browser
            .run_async(
                "for (let i = 0; i < 400 && window.__hdContexts.length === 0; i++) {
                     await new Promise((r) => setTimeout(r, 25));
                 }
                 if (window.__hdContexts.length === 0) return 0;
                 const analyser = window.__hdContexts[0].__hdAnalyser;
                 const data = new Float32Array(analyser.fftSize);
                 let peak = 0;
                 for (let i = 0; i < 200 && peak < 0.3; i++) {
                     await new Promise((r) => setTimeout(r, 25));
                     analyser.getFloatTimeDomainData(data);
                     for (const x of data) peak = Math.max(peak, Math.abs(x));
                 }
                 return peak;",
                vec![],
            )
            .await?;
        source.join().map_err(|_| anyhow::anyhow!("the sound source panicked"))??;
        let played: Value = wait_for("the tone's buffers", Duration::from_secs(30), || async {
            let played = browser.client.execute("return window.__hdPlayed;", vec![]).await?;
            let frames: usize = played
                .as_array()
                .map(|waves| waves.iter().map(|w| w["channels"][0].as_array().map_or(0, Vec::len)).sum())
                .unwrap_or(0);
            Ok((frames * 2 >= tone.len()).then_some(played))
        })
        .await?;
        let state = browser.client.execute("return window.__hdContexts.map((c) => c.state);", vec![]).await?;
        browser.screenshot("sound-desktop").await?;

        let waves = played.as_array().context("no buffers")?;
        let mut samples = Vec::new();
        for wave in waves {
            ensure!(wave["rate"] == 44_100, "a buffer at {}", wave["rate"]);
            ensure!(wave["state"] == "running", "a buffer started on a {} context", wave["state"]);
            let left = wave["channels"][0].as_array().context("left")?;
            let right = wave["channels"][1].as_array().context("right")?;
            for (l, r) in left.iter().zip(right) {
                samples.push(l.as_i64().context("sample")?);
                samples.push(r.as_i64().context("sample")?);
            }
        }
        // Back to back: each buffer starts where the previous one ends.
        for pair in waves.windows(2) {
            let end = pair[0]["when"].as_f64().context("when")? + pair[0]["duration"].as_f64().context("duration")?;
            let next = pair[1]["when"].as_f64().context("when")?;
            ensure!((next - end).abs() < 1e-6, "a gap or overlap between buffers: {end} then {next}");
        }
        eprintln!("sound: {} buffers, {} samples, peak {peak}, contexts {state}", waves.len(), samples.len());
        ensure!(state == serde_json::json!(["running"]), "audio contexts: {state}");
        let expected: Vec<i64> = tone.iter().map(|&s| i64::from(s)).collect();
        ensure!(samples.len() >= expected.len(), "only {} of {} samples", samples.len(), expected.len());
        ensure!(samples[..expected.len()] == expected[..], "the browser's samples differ from the tone");
        ensure!(samples[expected.len()..].iter().all(|&s| s == 0), "the silence after the tone is not silent");
        ensure!(peak.as_f64().unwrap_or(0.0) > 0.3, "the analyser heard a peak of only {peak}");
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = browser.screenshot("sound-failure").await;
    }
    result
}

#[tokio::test]
async fn with_sounds_off_the_workstation_gets_no_sound_channel() -> Result<()> {
    let mut relay = relay_with_xrdp()?;
    relay.cli(&["client-settings", "set", "sounds", "off"], None)?;
    relay.serve().await?;
    let browser = Browser::start(1280, 900).await?;
    let result = async {
        login_observed(&browser, &relay).await?;
        let display = session_display(USER)?;
        // With sounds on it appears within a second or two of the desktop; here it never does.
        let socket = audio_socket(&display);
        let opened = wait_for("chansrv's audio socket", Duration::from_secs(15), || async {
            Ok(std::path::Path::new(&socket).exists().then_some(()))
        })
        .await;
        ensure!(opened.is_err(), "chansrv opened {socket} although sounds are off");
        let played =
            browser.client.execute("return [window.__hdContexts.length, window.__hdPlayed.length];", vec![]).await?;
        ensure!(played == serde_json::json!([0, 0]), "contexts and buffers played with sounds off: {played}");
        Ok(())
    }
    .await;
    result
}

//! The workstation's sound through Web Audio: thin glue around `Event::Audio`.
//!
//! Browsers let a page make sound only after a user gesture (autoplay policy), so [`unlock`] creates
//! (or resumes) the page's one `AudioContext` from a click — the login button, the second-factor
//! button or a workstation choice — when the `sounds` client setting is on. A session's [`Player`]
//! turns each wave into an `AudioBuffer` (i16 → f32, de-interleaved) and schedules it right after
//! the previous one, [`JITTER_SECONDS`] ahead of the clock, so network jitter does not cut the
//! sound; when it falls behind (a gap in the stream) it starts again from now, and when the queue
//! grows past [`MAX_AHEAD_SECONDS`] (a tab in the background) waves are dropped to keep latency low.
//! The PCM itself is decoded and tested natively in `homedesk_client_core` (`sound.rs`).

use std::cell::RefCell;
use web_sys::{AudioContext, AudioContextState, GainNode};

/// How far ahead of the clock a stream (re)starts.
const JITTER_SECONDS: f64 = 0.12;
/// Audio queued further ahead than this is dropped.
const MAX_AHEAD_SECONDS: f64 = 1.0;

thread_local! {
    /// The page's audio context, made on the first user gesture with sounds on.
    static CONTEXT: RefCell<Option<AudioContext>> = const { RefCell::new(None) };
}

/// Call from a user gesture (click handler): creates or resumes the audio context when `sounds`.
pub fn unlock(sounds: bool) {
    if !sounds {
        return;
    }
    CONTEXT.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.is_none() {
            match AudioContext::new() {
                Ok(context) => *slot = Some(context),
                Err(error) => tracing::warn!(?error, "this browser gives no audio context; no sound"),
            }
        }
        if let Some(context) = slot.as_ref() {
            if context.state() != AudioContextState::Running {
                // The promise settles later; a refusal just leaves the page silent.
                let _ = context.resume();
            }
        }
    });
}

/// One session's sound output.
pub struct Player {
    context: AudioContext,
    gain: GainNode,
    /// When (context time) the next wave starts.
    next_start: f64,
}

impl Player {
    /// A player on the page's audio context; `None` when no gesture made one (sound stays off).
    pub fn new() -> Option<Player> {
        let context = CONTEXT.with(|slot| slot.borrow().clone())?;
        let gain = context.create_gain().ok()?;
        gain.connect_with_audio_node(&context.destination()).ok()?;
        Some(Player { context, gain, next_start: 0.0 })
    }

    /// Schedules one wave of interleaved 16-bit PCM after the previous one.
    pub fn play(&mut self, sample_rate: u32, channels: u16, samples: &[i16]) {
        let channel_count = usize::from(channels);
        if channel_count == 0 || samples.is_empty() {
            return;
        }
        let frames = samples.len() / channel_count;
        let Ok(frames_u32) = u32::try_from(frames) else { return };
        let buffer = match self.context.create_buffer(u32::from(channels), frames_u32, sample_rate as f32) {
            Ok(buffer) => buffer,
            Err(error) => {
                tracing::warn!(?error, sample_rate, channels, "the browser refused an audio buffer; wave skipped");
                return;
            }
        };
        let mut plane = vec![0f32; frames];
        for channel in 0..channel_count {
            for (frame, value) in plane.iter_mut().enumerate() {
                *value = f32::from(samples[frame * channel_count + channel]) / 32768.0;
            }
            let Ok(index) = i32::try_from(channel) else { return };
            if buffer.copy_to_channel(&plane, index).is_err() {
                return;
            }
        }
        let now = self.context.current_time();
        if self.next_start < now {
            self.next_start = now + JITTER_SECONDS;
        } else if self.next_start - now > MAX_AHEAD_SECONDS {
            tracing::debug!("audio queue too long; wave dropped");
            return;
        }
        let Ok(source) = self.context.create_buffer_source() else { return };
        source.set_buffer(Some(&buffer));
        if source.connect_with_audio_node(&self.gain).is_err() {
            return;
        }
        if source.start_with_when(self.next_start).is_ok() {
            self.next_start += buffer.duration();
        }
    }

    /// The workstation's volume (0..=0xFFFF per channel); one gain for both, their mean.
    pub fn set_volume(&self, left: u16, right: u16) {
        let level = (f32::from(left) + f32::from(right)) / (2.0 * f32::from(u16::MAX));
        self.gain.gain().set_value(level);
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        // Scheduled waves of an ended session stop with it; the context stays for the next one.
        let _ = self.gain.disconnect();
    }
}

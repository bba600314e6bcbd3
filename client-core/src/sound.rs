//! Sound (MS-RDPEA, the `rdpsnd` static channel) without I/O: the workstation's audio as PCM for
//! the page to play.
//!
//! IronRDP's `Rdpsnd` runs the channel's protocol: it answers the format list with ours, confirms
//! training, and confirms every wave with its timestamp (we report no playback delay: the core has
//! no clock). It hands each wave to a handler while it processes a PDU. That handler lives inside
//! the channel and IronRDP offers no way back to it, so [`QueueHandler`] shares a queue with
//! [`Sound`], which drains it after every processed PDU into [`Event::Audio`] and
//! [`Event::AudioVolume`].
//!
//! We offer 16-bit little-endian PCM at the rates and channel counts a browser's Web Audio plays
//! without help: its samples reach the page exactly as the workstation sent them. We also take the
//! workstation's IMA ADPCM formats (a quarter of the bandwidth), decoded by IronRDP. A wave that is
//! not whole frames, or does not decode, is logged and skipped; the session goes on.

use crate::Event;
use ironrdp_rdpsnd::client::{Rdpsnd, RdpsndClientHandler};
use ironrdp_rdpsnd::codec::AudioDecoder;
use ironrdp_rdpsnd::pdu::{AudioFormat, AudioFormatFlags, PitchPdu, VolumePdu, WaveFormat};
use ironrdp_session::ActiveStage;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// Sample rates offered, in our order of preference (CD quality first, then what Windows and
/// xrdp also produce).
const SAMPLE_RATES: [u32; 3] = [44_100, 48_000, 22_050];
/// Channel counts offered: stereo before mono.
const CHANNELS: [u16; 2] = [2, 1];
/// At most this many seconds of audio wait in the queue between two drains; a workstation that
/// floods the channel loses the oldest waves, never memory.
const MAX_QUEUED_SECONDS: usize = 10;

/// 16-bit PCM at `sample_rate` with `channels` channels.
pub(crate) fn pcm16(sample_rate: u32, channels: u16) -> AudioFormat {
    let block_align = channels * 2;
    AudioFormat {
        format: WaveFormat::PCM,
        n_channels: channels,
        n_samples_per_sec: sample_rate,
        n_avg_bytes_per_sec: sample_rate * u32::from(block_align),
        n_block_align: block_align,
        bits_per_sample: 16,
        data: None,
    }
}

/// Every format we offer, in our order of preference.
pub(crate) fn offered_formats() -> Vec<AudioFormat> {
    CHANNELS.iter().flat_map(|&channels| SAMPLE_RATES.iter().map(move |&rate| pcm16(rate, channels))).collect()
}

/// What the channel handed over while it processed a PDU, in order.
#[derive(Debug)]
enum Played {
    Wave { format: AudioFormat, data: Vec<u8> },
    Volume(VolumePdu),
}

type Queue = Arc<Mutex<VecDeque<Played>>>;

fn wave_len(played: &Played) -> usize {
    match played {
        Played::Wave { data, .. } => data.len(),
        Played::Volume(_) => 0,
    }
}

fn lock(queue: &Queue) -> std::sync::MutexGuard<'_, VecDeque<Played>> {
    // Nothing panics while holding the lock; a poisoned queue is still a valid queue.
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The handler given to `Rdpsnd`: records waves and volume changes for [`Sound::drain`].
#[derive(Debug)]
struct QueueHandler {
    formats: Vec<AudioFormat>,
    queue: Queue,
}

impl RdpsndClientHandler for QueueHandler {
    fn get_flags(&self) -> AudioFormatFlags {
        AudioFormatFlags::VOLUME
    }

    fn get_formats(&self) -> &[AudioFormat] {
        &self.formats
    }

    fn choose_formats(&self, server_formats: &[AudioFormat]) -> Vec<AudioFormat> {
        // Our PCM first (IronRDP keeps those the workstation offered), then its IMA ADPCM formats
        // that decode to something the browser plays: a quarter of the bandwidth.
        let adpcm = server_formats.iter().filter(|f| f.format == WaveFormat::DVI_ADPCM && playable(f));
        self.formats.iter().chain(adpcm).cloned().collect()
    }

    fn wave(&mut self, format: &AudioFormat, _ts: u32, data: Cow<'_, [u8]>) {
        let mut queue = lock(&self.queue);
        let limit = MAX_QUEUED_SECONDS * usize::try_from(format.n_avg_bytes_per_sec).unwrap_or(usize::MAX);
        let queued: usize = queue.iter().map(wave_len).sum();
        let mut excess = queued.saturating_add(data.len()).saturating_sub(limit);
        if excess > 0 {
            tracing::warn!(queued, "audio is not being drained; dropping the oldest waves");
            queue.retain(|played| match played {
                Played::Wave { data, .. } if excess > 0 => {
                    excess = excess.saturating_sub(data.len());
                    false
                }
                _ => true,
            });
        }
        queue.push_back(Played::Wave { format: format.clone(), data: data.into_owned() });
    }

    fn set_volume(&mut self, volume: VolumePdu) {
        lock(&self.queue).push_back(Played::Volume(volume));
    }

    fn set_pitch(&mut self, _pitch: PitchPdu) {
        // MS-RDPEA 2.2.3.2: clients ignore pitch.
    }

    fn close(&mut self) {
        // The server stopped (or is renegotiating); the page simply receives no more audio.
    }
}

/// Our side of the sound channel: drains what the channel's handler recorded.
pub(crate) struct Sound {
    queue: Queue,
    /// The workstation sent its format list and we answered with at least one of its formats.
    format_agreed: bool,
}

/// The channel processor the connector announces (`rdpsnd`), and our side of it.
pub(crate) fn channel() -> (Rdpsnd, Sound) {
    let queue = Queue::default();
    let handler = QueueHandler { formats: offered_formats(), queue: Arc::clone(&queue) };
    (Rdpsnd::new(Box::new(handler)), Sound { queue, format_agreed: false })
}

impl Sound {
    /// After every processed PDU: notes whether a format was agreed and turns what the channel
    /// recorded into events for the page.
    pub(crate) fn drain(&mut self, stage: &mut ActiveStage, events: &mut Vec<Event>) {
        if let Some(rdpsnd) = stage.get_svc_processor::<Rdpsnd>() {
            self.note_negotiation(rdpsnd);
        }
        self.drain_queue(events);
    }

    pub(crate) fn format_agreed(&self) -> bool {
        self.format_agreed
    }

    fn note_negotiation(&mut self, rdpsnd: &Rdpsnd) {
        let agreed = rdpsnd.version().is_ok() && rdpsnd.get_format(0).is_ok();
        if agreed && !self.format_agreed {
            if let Ok(format) = rdpsnd.get_format(0) {
                tracing::info!(
                    rate = format.n_samples_per_sec,
                    channels = format.n_channels,
                    "sound channel negotiated"
                );
            }
        }
        self.format_agreed = agreed;
    }

    fn drain_queue(&mut self, events: &mut Vec<Event>) {
        let played: Vec<Played> = lock(&self.queue).drain(..).collect();
        for item in played {
            match item {
                Played::Wave { format, data } => {
                    if let Some(event) = audio_event(&format, &data) {
                        events.push(event);
                    }
                }
                Played::Volume(volume) => {
                    events.push(Event::AudioVolume { left: volume.volume_left, right: volume.volume_right })
                }
            }
        }
    }
}

/// Sample rates and channel counts Web Audio's `AudioBuffer` takes everywhere.
fn playable(format: &AudioFormat) -> bool {
    (8_000..=96_000).contains(&format.n_samples_per_sec) && (1..=2).contains(&format.n_channels)
}

/// One wave as PCM samples, or `None` (logged) when it cannot be played: a format we did not
/// choose, PCM that is not whole frames, ADPCM that does not decode.
fn audio_event(format: &AudioFormat, data: &[u8]) -> Option<Event> {
    let frame = usize::from(format.n_channels) * 2;
    let samples = match format.format {
        _ if !playable(format) => None,
        WaveFormat::PCM if format.bits_per_sample == 16 => {
            if data.is_empty() || !data.len().is_multiple_of(frame) {
                tracing::warn!(len = data.len(), frame, "a PCM wave that is not whole frames; skipped");
                return None;
            }
            // Exactly as sent: little-endian 16-bit samples, interleaved.
            Some(data.chunks_exact(2).map(|pair| i16::from_le_bytes([pair[0], pair[1]])).collect())
        }
        WaveFormat::DVI_ADPCM => {
            let mut samples = Vec::new();
            match AudioDecoder::new(format).and_then(|mut decoder| decoder.decode(data, &mut samples)) {
                Ok(()) if !samples.is_empty() => Some(samples),
                Ok(()) => None,
                Err(error) => {
                    tracing::warn!(%error, "an ADPCM wave that does not decode; skipped");
                    return None;
                }
            }
        }
        _ => None,
    };
    let Some(samples) = samples else {
        tracing::warn!(?format, len = data.len(), "a wave we cannot play; skipped");
        return None;
    };
    Some(Event::Audio { sample_rate: format.n_samples_per_sec, channels: format.n_channels, samples })
}

#[cfg(test)]
#[path = "sound_tests.rs"]
mod tests;

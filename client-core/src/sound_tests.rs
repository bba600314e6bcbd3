//! Sound against a workstation peer built from IronRDP's server half of rdpsnd (`RdpsndServer`):
//! format negotiation, training, then a known tone (440 Hz, 0.5 s, 44.1 kHz stereo) in several
//! waves. The page must get the very samples, in order, and the peer a confirm for every wave
//! carrying its timestamp. Run as a Windows peer (version 8, Wave2 PDUs) and as an xrdp-like one
//! (version 5 or 6: WaveInfo then a bare Wave PDU).

use super::*;
use ironrdp_core::{encode_vec, Decode as _, ReadCursor};
use ironrdp_rdpsnd::codec::{alaw_format, ima_adpcm_format, AudioEncoder};
use ironrdp_rdpsnd::pdu::{ServerAudioOutputPdu, Version};
use ironrdp_rdpsnd::server::{NegotiatedFormat, RdpsndError, RdpsndServer, RdpsndServerHandler};
use ironrdp_svc::{SvcMessage, SvcProcessor};

/// What the peer saw of the client.
#[derive(Debug, Default)]
struct PeerLog {
    /// The format the peer streams in, once chosen.
    started: Option<AudioFormat>,
    /// Wave confirms: (block number, timestamp).
    confirms: Vec<(u8, u16)>,
}

/// The workstation's side: offers formats in its order and streams in the first common one.
#[derive(Debug)]
struct Peer {
    formats: Vec<AudioFormat>,
    log: Arc<Mutex<PeerLog>>,
}

impl RdpsndServerHandler for Peer {
    fn get_formats(&self) -> &[AudioFormat] {
        &self.formats
    }

    fn choose_format<'a>(&mut self, common: &'a [NegotiatedFormat]) -> Option<&'a NegotiatedFormat> {
        common.first()
    }

    fn start(&mut self, format: &NegotiatedFormat) -> Result<(), Box<dyn RdpsndError>> {
        self.log.lock().expect("log").started = Some(format.format().clone());
        Ok(())
    }

    fn stop(&mut self) {}

    fn wave_confirm(&mut self, block_no: u8, timestamp: u16) {
        self.log.lock().expect("log").confirms.push((block_no, timestamp));
    }
}

/// IMA ADPCM as Windows offers it: 44.1 kHz stereo in 2048-byte blocks.
fn ima_adpcm() -> AudioFormat {
    ima_adpcm_format(2, 44_100, 2048)
}

/// The client's channel (as the connector runs it) and our side, wired to a server peer.
struct Wire {
    client: Rdpsnd,
    sound: Sound,
    server: RdpsndServer,
    log: Arc<Mutex<PeerLog>>,
    /// The protocol version the peer announces (the client echoes it, so the peer uses it too).
    version: Version,
    events: Vec<Event>,
}

fn bytes(message: &SvcMessage) -> Vec<u8> {
    message.encode_unframed_pdu().expect("encodable")
}

impl Wire {
    fn new(server_formats: Vec<AudioFormat>, version: Version) -> Wire {
        let (client, sound) = channel();
        let log = Arc::new(Mutex::new(PeerLog::default()));
        let server = RdpsndServer::new(Box::new(Peer { formats: server_formats, log: Arc::clone(&log) }));
        Wire { client, sound, server, log, version, events: Vec::new() }
    }

    /// `RdpsndServer` always announces version 8; xrdp announces an older one. Rewrites the
    /// format list's version so the whole exchange runs at `self.version`.
    fn as_workstation(&self, message: Vec<u8>) -> Vec<u8> {
        match ServerAudioOutputPdu::decode(&mut ReadCursor::new(&message)) {
            Ok(ServerAudioOutputPdu::AudioFormat(mut list)) => {
                list.version = self.version;
                encode_vec(&ServerAudioOutputPdu::AudioFormat(list)).expect("encodable")
            }
            _ => message,
        }
    }

    /// Delivers raw server messages and everything that follows until both sides are quiet.
    fn deliver_bytes(&mut self, mut to_client: Vec<Vec<u8>>) {
        while !to_client.is_empty() {
            let mut to_server = Vec::new();
            for message in to_client.drain(..) {
                let message = self.as_workstation(message);
                to_server.extend(self.client.process(&message).expect("the client never fails on audio"));
                self.sound.note_negotiation(&self.client);
                self.sound.drain_queue(&mut self.events);
            }
            for message in to_server {
                to_client.extend(self.server.process(&bytes(&message)).expect("server processes").iter().map(bytes));
            }
        }
    }

    fn deliver(&mut self, to_client: Vec<SvcMessage>) {
        self.deliver_bytes(to_client.iter().map(bytes).collect());
    }

    /// Format negotiation and training.
    fn start(&mut self) {
        let formats = self.server.start().expect("server formats");
        self.deliver(formats);
        assert!(self.server.is_ready(), "negotiation did not finish");
        assert!(self.sound.format_agreed());
    }

    fn send_wave(&mut self, pcm: &[i16], timestamp: u32) {
        let data: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        let wave = self.server.wave(data, timestamp).expect("wave");
        self.deliver(wave.into());
    }

    fn audio(&self) -> Vec<(u32, u16, &[i16])> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Audio { sample_rate, channels, samples } => Some((*sample_rate, *channels, samples.as_slice())),
                _ => None,
            })
            .collect()
    }

    fn confirms(&self) -> Vec<(u8, u16)> {
        self.log.lock().expect("log").confirms.clone()
    }
}

/// 0.5 s of a 440 Hz sine at 44.1 kHz, both channels (the right one at half amplitude, so a
/// swap of channels would show), interleaved.
fn tone() -> Vec<i16> {
    (0..22_050)
        .flat_map(|n| {
            let value = (2.0 * std::f64::consts::PI * 440.0 * f64::from(n) / 44_100.0).sin();
            [(value * 20_000.0) as i16, (value * 10_000.0) as i16]
        })
        .collect()
}

/// Streams the tone in 100 ms waves and checks what the page and the peer got.
fn tone_arrives_exactly(version: Version) {
    // The peer streams in its first format we also take: 22.05 kHz mono here.
    let mut wire = Wire::new(vec![alaw_format(2, 44_100), pcm16(22_050, 1), pcm16(44_100, 2)], version);
    wire.start();
    assert_eq!(wire.log.lock().expect("log").started, Some(pcm16(22_050, 1)));

    // A workstation playing CD-quality sound.
    let mut wire = Wire::new(vec![pcm16(44_100, 2), ima_adpcm(), pcm16(22_050, 1)], version);
    wire.start();
    assert_eq!(wire.log.lock().expect("log").started, Some(pcm16(44_100, 2)));

    let tone = tone();
    let timestamps: Vec<u32> = (0..5).map(|n| 70_000 + n * 100).collect();
    for (chunk, &timestamp) in tone.chunks(4_410 * 2).zip(&timestamps) {
        wire.send_wave(chunk, timestamp);
    }

    let audio = wire.audio();
    assert_eq!(audio.len(), 5, "one event per wave");
    assert!(audio.iter().all(|&(rate, channels, _)| (rate, channels) == (44_100, 2)));
    let received: Vec<i16> = audio.iter().flat_map(|(_, _, samples)| samples.iter().copied()).collect();
    assert_eq!(received.len(), tone.len());
    assert!(received == tone, "the samples differ from the tone sent");

    // Every wave confirmed once, in order, with its own timestamp (no playback delay reported).
    let expected: Vec<(u8, u16)> = timestamps.iter().enumerate().map(|(n, &ts)| (n as u8, ts as u16)).collect();
    assert_eq!(wire.confirms(), expected);
}

#[test]
fn a_tone_arrives_as_the_same_samples_from_a_version_8_peer() {
    tone_arrives_exactly(Version::V8);
}

#[test]
fn a_tone_arrives_as_the_same_samples_from_an_xrdp_like_peer() {
    // Version 6 adds the quality mode exchange; version 5 does without.
    tone_arrives_exactly(Version::V6);
    tone_arrives_exactly(Version::V5);
}

#[test]
fn volume_changes_reach_the_page() {
    let mut wire = Wire::new(vec![pcm16(44_100, 2)], Version::V8);
    wire.start();
    let volume = wire.server.set_volume(0x8000, 0xFFFF).expect("the client takes volume");
    wire.deliver(volume.into());
    assert!(
        matches!(wire.events.as_slice(), [Event::AudioVolume { left: 0x8000, right: 0xFFFF }]),
        "{:?}",
        wire.events
    );
}

#[test]
fn malformed_audio_is_skipped_and_the_sound_goes_on() {
    let mut wire = Wire::new(vec![pcm16(48_000, 2)], Version::V8);
    wire.start();
    // Garbage, a truncated PDU and an unknown message type: nothing for the page, no failure.
    wire.deliver_bytes(vec![
        vec![0xFF; 3],
        vec![0x0D, 0x00, 0x40, 0x00, 0x01],
        vec![0x7E, 0x00, 0x04, 0x00, 1, 2, 3, 4],
    ]);
    // A wave that is not whole stereo frames (3 bytes): skipped, but still confirmed.
    let odd = wire.server.wave(vec![1, 2, 3], 500).expect("wave");
    wire.deliver(odd.into());
    assert!(wire.audio().is_empty(), "{:?}", wire.events);
    assert_eq!(wire.confirms(), vec![(0, 500)]);
    // The next good wave plays.
    wire.send_wave(&[1, -1, 2, -2], 600);
    assert_eq!(wire.audio(), vec![(48_000, 2, &[1i16, -1, 2, -2][..])]);
    assert_eq!(wire.confirms(), vec![(0, 500), (1, 600)]);
}

#[test]
fn an_ima_adpcm_tone_decodes_close_to_the_original() {
    let mut wire = Wire::new(vec![ima_adpcm()], Version::V8);
    wire.start();
    assert_eq!(wire.log.lock().expect("log").started, Some(ima_adpcm()));
    let tone = tone();
    let mut encoder = AudioEncoder::new(&ima_adpcm()).expect("encoder");
    let mut encoded = Vec::new();
    encoder.encode(&tone, &mut encoded);
    // Whole blocks, two per wave, as Windows sends them.
    for (n, wave) in encoded.chunks(2 * 2048).enumerate() {
        let sent = wire.server.wave(wave.to_vec(), 1_000 + n as u32).expect("wave");
        wire.deliver(sent.into());
    }
    let blocks = encoded.len() / 2048;
    assert_eq!(wire.confirms().len(), blocks.div_ceil(2));
    let audio = wire.audio();
    assert!(audio.iter().all(|&(rate, channels, _)| (rate, channels) == (44_100, 2)));
    let received: Vec<i16> = audio.iter().flat_map(|(_, _, samples)| samples.iter().copied()).collect();
    // 2041 frames per block; the encoder keeps the tone's last partial block.
    assert_eq!(received.len(), blocks * 2041 * 2);
    let signal: f64 = tone[..received.len()].iter().map(|&s| f64::from(s).powi(2)).sum();
    let noise: f64 = tone.iter().zip(&received).map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2)).sum();
    let snr_db = 10.0 * (signal / noise).log10();
    eprintln!("IMA ADPCM: {blocks} blocks, SNR {snr_db:.1} dB");
    assert!(snr_db > 20.0, "ADPCM round trip SNR {snr_db:.1} dB");
}

#[test]
fn no_common_format_means_no_audio_and_no_failure() {
    // G.711 A-law: IronRDP decodes it, but we do not take it.
    let mut wire = Wire::new(vec![alaw_format(2, 44_100)], Version::V8);
    let formats = wire.server.start().expect("server formats");
    wire.deliver(formats);
    assert!(!wire.server.is_ready());
    assert!(!wire.sound.format_agreed());
    assert!(wire.log.lock().expect("log").started.is_none());
    assert!(wire.events.is_empty());
}

#[test]
fn offered_formats_are_16_bit_pcm_the_browser_plays() {
    let formats = offered_formats();
    assert_eq!(formats.len(), 6);
    assert!(formats.iter().all(playable));
    for format in &formats {
        assert_eq!((format.format, format.bits_per_sample), (WaveFormat::PCM, 16));
        assert_eq!(u32::from(format.n_block_align) * format.n_samples_per_sec, format.n_avg_bytes_per_sec);
    }
    assert_eq!(formats[0], pcm16(44_100, 2));
}

#[test]
fn an_undrained_queue_keeps_the_newest_ten_seconds() {
    let queue = Queue::default();
    let mut handler = QueueHandler { formats: offered_formats(), queue: Arc::clone(&queue) };
    let format = pcm16(44_100, 1);
    // Twelve 1 s waves, each starting with its number.
    for n in 0..12i16 {
        let mut samples = vec![0i16; 44_100];
        samples[0] = n;
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        handler.wave(&format, 0, Cow::Owned(data));
    }
    handler.set_volume(VolumePdu { volume_left: 1, volume_right: 2 });
    let mut sound = Sound { queue, format_agreed: false };
    let mut events = Vec::new();
    sound.drain_queue(&mut events);
    let firsts: Vec<i16> = events
        .iter()
        .filter_map(|e| match e {
            Event::Audio { samples, .. } => samples.first().copied(),
            _ => None,
        })
        .collect();
    assert_eq!(firsts, (2..12).collect::<Vec<i16>>());
    assert!(matches!(events.last(), Some(Event::AudioVolume { left: 1, right: 2 })));
}

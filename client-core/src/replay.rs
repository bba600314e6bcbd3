//! Recorded graphics updates, replayed through the session's own decoder.
//!
//! The bench (`cargo xtask bench`) measures how fast the client turns a workstation's RemoteFX,
//! planar and interleaved bitmap updates into pixels, natively and in the browser, on the very same
//! bytes. A [`Recording`] is the fast-path frames a session received from its first update on
//! ([`crate::RdpClient::record_updates`]); a [`Replay`] feeds them to IronRDP's fast-path processor
//! with the guard, image format and paint rectangles of a live session, so the figures are the
//! session's. A recording is a file, so reading one checks every length and never panics.
//! Slow-path graphics updates (xrdp 0.9 sends its bitmaps so) are not recorded: the bench records
//! FreeRDP's shadow server, which sends every update fast-path.

use crate::connection::{new_image, paint_rect};
use crate::guard::UpdateGuard;
use crate::{ClientError, Framebuffer, Rect};
use ironrdp_core::WriteBuf;
use ironrdp_pdu::Action;
use ironrdp_session::fast_path::{Processor, ProcessorBuilder, UpdateKind};
use ironrdp_session::image::DecodedImage;

/// The first bytes of a recording file; the number is the format's version.
const MAGIC: &[u8; 8] = b"HDREC01\n";
/// A fast-path frame is at most 32 KiB on the wire; anything longer is not one.
const MAX_FRAME: usize = 0x8000;

/// Why a recording cannot be read or replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("not a Homedesk recording (the file does not start with {MAGIC:?})")]
    NotARecording,
    #[error("the recording is cut short or malformed: {0}")]
    Malformed(String),
    #[error("frame {index} of the recording did not decode: {error}")]
    Decode { index: usize, error: ClientError },
}

/// Fast-path frames as a session received them, and the desktop size they were drawn at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub width: u16,
    pub height: u16,
    pub frames: Vec<Vec<u8>>,
}

impl Recording {
    /// The file format: [`MAGIC`], width and height (u16 LE), the frame count (u32 LE), then each
    /// frame as its length (u32 LE) and bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let total: usize = self.frames.iter().map(|frame| frame.len() + 4).sum();
        let mut bytes = Vec::with_capacity(MAGIC.len() + 8 + total);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&self.width.to_le_bytes());
        bytes.extend_from_slice(&self.height.to_le_bytes());
        bytes.extend_from_slice(&(self.frames.len() as u32).to_le_bytes());
        for frame in &self.frames {
            bytes.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            bytes.extend_from_slice(frame);
        }
        bytes
    }
}

/// A recording read in place: the desktop size and each frame as a slice of the file's bytes
/// (recordings of full-screen photos reach 100 MB; the browser need not hold them twice).
#[derive(Debug)]
pub struct RecordedFrames<'a> {
    pub width: u16,
    pub height: u16,
    pub frames: Vec<&'a [u8]>,
}

impl<'a> RecordedFrames<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<RecordedFrames<'a>, ReplayError> {
        let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or(ReplayError::NotARecording)?;
        let mut reader = Reader(rest);
        let width = u16::from_le_bytes(reader.take("the width")?);
        let height = u16::from_le_bytes(reader.take("the height")?);
        crate::config::check_desktop_size(width, height).map_err(ReplayError::Malformed)?;
        let count = u32::from_le_bytes(reader.take("the frame count")?) as usize;
        // Every frame takes at least its 4-byte length: a count beyond that is a lie.
        if count > reader.0.len() / 4 {
            return Err(ReplayError::Malformed(format!("{count} frames announced in {} bytes", reader.0.len())));
        }
        let mut frames = Vec::with_capacity(count);
        for index in 0..count {
            let len = u32::from_le_bytes(reader.take("a frame length")?) as usize;
            if len > MAX_FRAME {
                return Err(ReplayError::Malformed(format!("frame {index} is {len} bytes, more than a fast-path frame")));
            }
            frames.push(reader.slice(len).ok_or_else(|| ReplayError::Malformed(format!("frame {index} is cut short")))?);
        }
        if !reader.0.is_empty() {
            return Err(ReplayError::Malformed(format!("{} bytes after the last frame", reader.0.len())));
        }
        Ok(RecordedFrames { width, height, frames })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn slice(&mut self, len: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(len)?;
        self.0 = tail;
        Some(head)
    }

    fn take<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ReplayError> {
        self.slice(N)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| ReplayError::Malformed(format!("{what} is missing")))
    }
}

/// IronRDP's fast-path decoder and a framebuffer, as in a live session.
pub struct Replay {
    processor: Processor,
    image: DecodedImage,
    guard: UpdateGuard,
    /// Where the processor writes its answers (frame acknowledgements); nobody reads them here.
    answers: WriteBuf,
    frames_done: usize,
}

impl Replay {
    pub fn new(width: u16, height: u16) -> Result<Replay, ReplayError> {
        let image = new_image(width, height).map_err(|error| ReplayError::Malformed(error.to_string()))?;
        // The channel ids only address the answers nobody reads, but they must encode: MCS user ids
        // start at 1001.
        let processor = ProcessorBuilder {
            io_channel_id: 1003,
            user_channel_id: 1007,
            share_id: 0x0001_03ea,
            enable_server_pointer: true,
            pointer_software_rendering: false,
        }
        .build();
        Ok(Replay { processor, image, guard: UpdateGuard::default(), answers: WriteBuf::new(), frames_done: 0 })
    }

    /// Decodes the next recorded frame into the framebuffer; returns the rectangles a session would
    /// paint (in a session each is an [`crate::Event::Paint`]).
    pub fn frame(&mut self, frame: &[u8]) -> Result<Vec<Rect>, ReplayError> {
        let index = self.frames_done;
        self.frames_done += 1;
        let decode = |error: ClientError| ReplayError::Decode { index, error };
        self.guard.check(Action::FastPath, frame).map_err(decode)?;
        self.answers.clear();
        let updates = self
            .processor
            .process(&mut self.image, frame, &mut self.answers, &mut None)
            .map_err(|error| decode(crate::error::from_session(&error)))?;
        Ok(updates
            .iter()
            .filter_map(|update| match update {
                UpdateKind::Region(region) => paint_rect(region, &self.image),
                _ => None,
            })
            .collect())
    }

    pub fn framebuffer(&self) -> Framebuffer<'_> {
        Framebuffer { width: self.image.width(), height: self.image.height(), rgba: self.image.data() }
    }
}

/// The SHA-256 (hex) of a picture's colours, alpha left out: the framebuffer's alpha is not what a
/// canvas shows (painting makes it opaque), so a replay and a canvas compare on colour alone.
pub fn colour_sha256(rgba: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for pixel in rgba.chunks_exact(4) {
        hasher.update(&pixel[..3]);
    }
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recording() -> Recording {
        Recording { width: 64, height: 32, frames: vec![vec![1, 2, 3], vec![], vec![9; 300]] }
    }

    #[test]
    fn a_recording_reads_back_as_written() {
        let bytes = recording().to_bytes();
        let read = RecordedFrames::parse(&bytes).unwrap();
        assert_eq!((read.width, read.height), (64, 32));
        let frames: Vec<Vec<u8>> = read.frames.iter().map(|frame| frame.to_vec()).collect();
        assert_eq!(frames, recording().frames);
    }

    #[test]
    fn every_cut_or_lie_is_an_error_not_a_panic() {
        let bytes = recording().to_bytes();
        for len in 0..bytes.len() {
            assert!(RecordedFrames::parse(&bytes[..len]).is_err(), "cut at {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(RecordedFrames::parse(&longer), Err(ReplayError::Malformed(_))));
        let mut wrong_magic = bytes.clone();
        wrong_magic[0] = b'X';
        assert_eq!(RecordedFrames::parse(&wrong_magic).unwrap_err(), ReplayError::NotARecording);
        let mut huge_count = bytes.clone();
        huge_count[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(RecordedFrames::parse(&huge_count), Err(ReplayError::Malformed(_))));
        let mut zero_width = bytes;
        zero_width[8..10].copy_from_slice(&0u16.to_le_bytes());
        assert!(matches!(RecordedFrames::parse(&zero_width), Err(ReplayError::Malformed(_))));
    }

    #[test]
    fn a_frame_that_is_not_fast_path_is_a_decode_error_with_its_index() {
        let mut replay = Replay::new(64, 32).unwrap();
        match replay.frame(&[0xff, 0x01]) {
            Err(ReplayError::Decode { index: 0, .. }) => {}
            other => panic!("expected a decode error of frame 0, got {other:?}"),
        }
        assert!(matches!(replay.frame(&[]), Err(ReplayError::Decode { index: 1, .. })));
    }

    #[test]
    fn colours_are_compared_without_alpha() {
        assert_eq!(colour_sha256(&[1, 2, 3, 0]), colour_sha256(&[1, 2, 3, 255]));
        assert_ne!(colour_sha256(&[1, 2, 3, 255]), colour_sha256(&[1, 2, 4, 255]));
    }
}

//! Reassembles protocol frames from the arbitrary chunks a WebSocket or TCP read delivers.
//!
//! Bytes are appended as they arrive; a frame is taken out only once it is complete, as sized by the
//! current sequence's `PduHint` (connection phase) or by `ironrdp_pdu::find_size` (active session).
//! One chunk may hold many frames or a fraction of one. Sizes are bounded so a hostile or broken peer
//! cannot make the client buffer without limit.

use crate::error::ClientError;
use ironrdp_pdu::{Action, PduHint};

/// Largest frame accepted. TPKT and fast-path lengths are 16-bit; CredSSP messages are small.
pub(crate) const MAX_FRAME_LEN: usize = 1024 * 1024;

/// Bytes waiting to form a frame.
#[derive(Debug, Default)]
pub(crate) struct FrameBuffer {
    bytes: Vec<u8>,
}

impl FrameBuffer {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes; refuses to hold more than a maximal frame plus one read's worth.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<(), ClientError> {
        if self.bytes.len().saturating_add(chunk.len()) > 2 * MAX_FRAME_LEN + 64 * 1024 {
            return Err(ClientError::protocol("the workstation sent more data than any frame can hold"));
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Removes and returns everything buffered (used when the byte stream changes hands, e.g. to TLS).
    pub(crate) fn take_all(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.bytes)
    }

    /// Next complete frame that `hint` matches; frames the hint does not match are skipped
    /// (IronRDP's convention for PDUs the current step does not expect). `Ok(None)`: need more bytes.
    pub(crate) fn next_by_hint(&mut self, hint: &dyn PduHint) -> Result<Option<Vec<u8>>, ClientError> {
        loop {
            let sized = hint
                .find_size(&self.bytes)
                .map_err(|e| ClientError::protocol(format!("malformed frame header: {e}")))?;
            let Some((matched, length)) = sized else {
                return self.need_more();
            };
            check_length(length)?;
            if self.bytes.len() < length {
                return Ok(None);
            }
            let frame = self.split_front(length);
            if matched {
                return Ok(Some(frame));
            }
            tracing::debug!(length, "skipped a frame the current connection step does not expect");
        }
    }

    /// Next complete frame of the active session (slow-path X.224 or fast-path).
    pub(crate) fn next_pdu(&mut self) -> Result<Option<(Action, Vec<u8>)>, ClientError> {
        let info = ironrdp_pdu::find_size(&self.bytes)
            .map_err(|e| ClientError::protocol(format!("malformed frame header: {e}")))?;
        let Some(info) = info else {
            return self.need_more::<()>().map(|_| None);
        };
        check_length(info.length)?;
        if self.bytes.len() < info.length {
            return Ok(None);
        }
        Ok(Some((info.action, self.split_front(info.length))))
    }

    /// No size could be read yet: fine for a few header bytes, an error for a long run of them.
    fn need_more<T>(&self) -> Result<Option<T>, ClientError> {
        if self.bytes.len() > MAX_FRAME_LEN {
            return Err(ClientError::protocol("the workstation sent data that never forms a frame"));
        }
        Ok(None)
    }

    fn split_front(&mut self, length: usize) -> Vec<u8> {
        let rest = self.bytes.split_off(length.min(self.bytes.len()));
        core::mem::replace(&mut self.bytes, rest)
    }
}

fn check_length(length: usize) -> Result<(), ClientError> {
    if length == 0 {
        return Err(ClientError::protocol("the workstation sent an empty frame"));
    }
    if length > MAX_FRAME_LEN {
        return Err(ClientError::protocol(format!("the workstation announced an oversized frame ({length} bytes)")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironrdp_pdu::X224_HINT;

    /// A TPKT frame of `total` bytes (header included) filled with `fill`.
    fn tpkt(total: u16, fill: u8) -> Vec<u8> {
        let mut frame = vec![3, 0];
        frame.extend_from_slice(&total.to_be_bytes());
        frame.resize(usize::from(total), fill);
        frame
    }

    /// A fast-path frame of `total` bytes using the two-byte length form.
    fn fastpath(total: u16, fill: u8) -> Vec<u8> {
        let mut frame = vec![0x00, 0x80 | ((total >> 8) as u8), (total & 0xff) as u8];
        frame.resize(usize::from(total), fill);
        frame
    }

    #[test]
    fn frames_split_across_chunks_come_out_whole() {
        let frame = tpkt(300, 7);
        let mut buffer = FrameBuffer::new();
        for (i, byte) in frame.iter().enumerate() {
            buffer.push(&[*byte]).unwrap();
            let next = buffer.next_by_hint(&X224_HINT).unwrap();
            if i + 1 < frame.len() {
                assert!(next.is_none(), "frame complete too early at byte {i}");
            } else {
                assert_eq!(next.unwrap(), frame);
            }
        }
        assert!(buffer.is_empty());
    }

    #[test]
    fn many_frames_in_one_chunk_come_out_in_order() {
        let frames = [tpkt(10, 1), fastpath(200, 2), tpkt(4000, 3), fastpath(3, 4)];
        let mut chunk = Vec::new();
        for frame in &frames {
            chunk.extend_from_slice(frame);
        }
        chunk.extend_from_slice(&tpkt(50, 5)[..20]); // start of a following frame
        let mut buffer = FrameBuffer::new();
        buffer.push(&chunk).unwrap();
        for frame in &frames {
            let (action, bytes) = buffer.next_pdu().unwrap().unwrap();
            assert_eq!(&bytes, frame);
            assert_eq!(action, if frame[0] == 3 { Action::X224 } else { Action::FastPath });
        }
        assert!(buffer.next_pdu().unwrap().is_none());
        assert_eq!(buffer.len(), 20);
        buffer.push(&tpkt(50, 5)[20..]).unwrap();
        assert_eq!(buffer.next_pdu().unwrap().unwrap().1, tpkt(50, 5));
    }

    #[test]
    fn frames_the_hint_does_not_expect_are_skipped() {
        let mut buffer = FrameBuffer::new();
        buffer.push(&fastpath(30, 9)).unwrap();
        buffer.push(&tpkt(12, 1)).unwrap();
        assert_eq!(buffer.next_by_hint(&X224_HINT).unwrap().unwrap(), tpkt(12, 1));
    }

    #[test]
    fn absurd_and_malformed_sizes_are_refused() {
        let mut buffer = FrameBuffer::new();
        buffer.push(&[3, 0, 0, 0]).unwrap(); // TPKT length 0
        assert!(buffer.next_pdu().is_err());

        let mut buffer = FrameBuffer::new();
        buffer.push(&[0x01, 0x02]).unwrap(); // unknown action bits
        assert!(matches!(buffer.next_pdu(), Err(ClientError::Protocol(_))));

        let mut buffer = FrameBuffer::new();
        assert!(buffer.push(&vec![0u8; 3 * MAX_FRAME_LEN]).is_err());
    }
}

//! Pre-checks server graphics updates that IronRDP would panic on.
//!
//! IronRDP's session layer trusts some geometry from the wire: a surface command whose destination
//! rectangle is empty or inverted underflows `right - 1` / `width()` while decoding (found by this
//! crate's random-input test). A panic would kill the whole browser tab's client, so fast-path frames
//! are looked at here first, with the same fragment reassembly IronRDP applies, and such updates end
//! the connection with a protocol error instead. Everything else is left to IronRDP's own errors.

use crate::error::ClientError;
use ironrdp_core::{decode_cursor, ReadCursor};
use ironrdp_pdu::fast_path::{FastPathHeader, FastPathUpdate, FastPathUpdatePdu, Fragmentation, UpdateCode};
use ironrdp_pdu::surface_commands::SurfaceCommand;
use ironrdp_pdu::Action;

/// Reassembled fragments are bounded like IronRDP's (a surface update is at most a few MiB).
const MAX_REASSEMBLED: usize = 16 * 1024 * 1024;

#[derive(Default)]
pub(crate) struct UpdateGuard {
    /// Update code and data of a fragmented update in progress.
    pending: Option<(UpdateCode, Vec<u8>)>,
}

impl UpdateGuard {
    /// `Err` when the frame carries an update IronRDP cannot process safely.
    pub(crate) fn check(&mut self, action: Action, frame: &[u8]) -> Result<(), ClientError> {
        if action != Action::FastPath {
            return Ok(());
        }
        let mut cursor = ReadCursor::new(frame);
        if decode_cursor::<FastPathHeader>(&mut cursor).is_err() {
            return Ok(()); // IronRDP reports the malformed header.
        }
        while !cursor.is_empty() {
            let Ok(update) = decode_cursor::<FastPathUpdatePdu<'_>>(&mut cursor) else {
                // IronRDP drops the frame's rest and any pending fragments (or fails): so do we.
                self.pending = None;
                return Ok(());
            };
            if update.compression_flags.is_some_and(|flags| !flags.is_empty()) {
                // No bulk compression is negotiated; IronRDP refuses compressed updates.
                self.pending = None;
                return Ok(());
            }
            match update.fragmentation {
                Fragmentation::Single => {
                    self.pending = None;
                    validate(update.update_code, update.data)?;
                }
                Fragmentation::First => self.pending = Some((update.update_code, update.data.to_vec())),
                Fragmentation::Next | Fragmentation::Last => {
                    let Some((code, data)) = self.pending.as_mut() else {
                        return Ok(()); // IronRDP fails on a fragment without a start.
                    };
                    if *code != update.update_code {
                        self.pending = None;
                        return Ok(()); // IronRDP fails on inconsistent fragments.
                    }
                    if data.len().saturating_add(update.data.len()) > MAX_REASSEMBLED {
                        return Err(ClientError::protocol("the workstation sent an oversized fragmented update"));
                    }
                    data.extend_from_slice(update.data);
                    if update.fragmentation == Fragmentation::Last {
                        if let Some((code, data)) = self.pending.take() {
                            validate(code, &data)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn validate(code: UpdateCode, data: &[u8]) -> Result<(), ClientError> {
    if code != UpdateCode::SurfaceCommands {
        return Ok(());
    }
    let Ok(FastPathUpdate::SurfaceCommands(commands)) = FastPathUpdate::decode_with_code(data, code) else {
        return Ok(()); // IronRDP reports or ignores undecodable updates.
    };
    for command in commands {
        if let SurfaceCommand::SetSurfaceBits(bits) | SurfaceCommand::StreamSurfaceBits(bits) = command {
            let d = bits.destination;
            if d.left >= d.right || d.top >= d.bottom {
                return Err(ClientError::protocol(format!(
                    "the workstation sent a surface update with an empty destination ({},{})-({},{})",
                    d.left, d.top, d.right, d.bottom
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fast-path frame with one set-surface-bits command (codec none, 32 bpp) to `dest`.
    fn surface_bits(fragmentation: u8, dest: [u16; 4]) -> Vec<u8> {
        let mut command = vec![0x01, 0x00];
        for v in dest {
            command.extend(v.to_le_bytes());
        }
        command.extend([32u8, 0, 0, 0]);
        command.extend(1u16.to_le_bytes());
        command.extend(1u16.to_le_bytes());
        command.extend(4u32.to_le_bytes());
        command.extend([1, 2, 3, 4]);
        let mut update = vec![0x04 | (fragmentation << 4)];
        update.extend((command.len() as u16).to_le_bytes());
        update.extend(command);
        let total = (update.len() + 3) as u16;
        let mut frame = vec![0x00, 0x80 | (total >> 8) as u8, total as u8];
        frame.extend(update);
        frame
    }

    #[test]
    fn sound_surface_commands_pass() {
        let mut guard = UpdateGuard::default();
        assert!(guard.check(Action::FastPath, &surface_bits(0, [0, 0, 1, 1])).is_ok());
        assert!(guard.check(Action::X224, &[3, 0, 0, 4]).is_ok());
    }

    #[test]
    fn inverted_or_empty_destinations_are_refused() {
        let mut guard = UpdateGuard::default();
        assert!(guard.check(Action::FastPath, &surface_bits(0, [5, 0, 0, 1])).is_err());
        assert!(guard.check(Action::FastPath, &surface_bits(0, [0, 0, 0, 0])).is_err());
    }

    #[test]
    fn fragmented_updates_are_checked_once_complete() {
        let frame = surface_bits(0, [0, 0, 0, 0]);
        // Split the update payload into a first and a last fragment.
        let update = &frame[3..];
        let data = &update[3..];
        let (a, b) = data.split_at(5);
        let fragment = |fragmentation: u8, part: &[u8]| {
            let mut u = vec![0x04 | (fragmentation << 4)];
            u.extend((part.len() as u16).to_le_bytes());
            u.extend(part);
            let total = (u.len() + 3) as u16;
            let mut f = vec![0x00, 0x80 | (total >> 8) as u8, total as u8];
            f.extend(u);
            f
        };
        let mut guard = UpdateGuard::default();
        assert!(guard.check(Action::FastPath, &fragment(2, a)).is_ok());
        assert!(guard.check(Action::FastPath, &fragment(1, b)).is_err());
    }
}

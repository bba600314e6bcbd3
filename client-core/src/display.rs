//! The desktop's size and pictures beyond the static bitmap path: the dynamic virtual channels
//! Homedesk announces (Display Control for resizing, the graphics pipeline EGFX), resize requests,
//! and the colour depths a caller may ask for.
//!
//! Why a module of its own: these channels ride on `drdynvc`, whose processors IronRDP's session
//! drives (EGFX frames are composited into the session image by `ActiveStage`); what is left for us
//! is choosing the channels, turning a window size into a valid monitor layout, and telling the
//! caller when the workstation cannot resize so the page scales the picture instead.

use ironrdp_displaycontrol::client::DisplayControlClient;
use ironrdp_displaycontrol::pdu::MonitorLayoutEntry;
use ironrdp_dvc::DrdynvcClient;
use ironrdp_egfx::client::{GraphicsPipelineClient, GraphicsPipelineHandler};

/// Colour depths (bits per pixel) a session may be requested with.
pub const COLOR_DEPTHS: [u8; 4] = [15, 16, 24, 32];

/// Checks a requested colour depth.
pub(crate) fn check_color_depth(bits: u8) -> Result<(), String> {
    if COLOR_DEPTHS.contains(&bits) {
        Ok(())
    } else {
        Err(format!("unsupported colour depth {bits} (one of 15, 16, 24, 32 bits per pixel)"))
    }
}

/// EGFX events are not needed one by one: `ActiveStage` composites the decoded output itself.
struct CompositedByTheSession;

impl GraphicsPipelineHandler for CompositedByTheSession {}

/// The `drdynvc` static channel with the dynamic channels the client offers: Display Control (the
/// server answers with its capabilities once it supports resizing) and the graphics pipeline
/// (used only by servers that announce it; no H.264 decoder, so AVC is never advertised).
pub(crate) fn dynamic_channels() -> DrdynvcClient {
    DrdynvcClient::new()
        .with_dynamic_channel(DisplayControlClient::new(|_capabilities| Ok(Vec::new())))
        .with_dynamic_channel(GraphicsPipelineClient::new(Box::new(CompositedByTheSession), None))
}

/// The monitor size actually requested for a window of `width` x `height`: MS-RDPEDISP wants an
/// even width and 200..=8192 pixels per side.
pub(crate) fn monitor_size(width: u16, height: u16) -> (u16, u16) {
    let (w, h) = MonitorLayoutEntry::adjust_display_size(u32::from(width), u32::from(height));
    // adjust_display_size clamps to 200..=8192, which fits u16
    (w as u16, h as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_sizes_are_even_and_in_range() {
        assert_eq!(monitor_size(1281, 721), (1280, 721));
        assert_eq!(monitor_size(100, 50), (200, 200));
        assert_eq!(monitor_size(9000, 8193), (8192, 8192));
    }

    #[test]
    fn colour_depths() {
        for bits in COLOR_DEPTHS {
            assert!(check_color_depth(bits).is_ok());
        }
        assert!(check_color_depth(8).unwrap_err().contains("15, 16, 24, 32"));
        assert!(check_color_depth(0).is_err());
    }
}

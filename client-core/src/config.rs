//! The IronRDP connector settings Homedesk connects with, in one place.
//!
//! Security: TLS and NLA (CredSSP) offered, legacy Standard RDP Security never. Graphics: the
//! caller's colour depth with the bitmap codecs IronRDP decodes (RemoteFX, planar / interleaved
//! bitmaps) and the graphics pipeline (EGFX) for servers that announce it. Autologon so TLS-only
//! servers such as xrdp sign in with the given credentials. Server pointers on (the page shows the
//! workstation's cursor shapes), audio playback only when the caller wants sound (no capture).
//! Channels: the shared clipboard and `drdynvc` with Display Control and EGFX (attached in
//! `connection`, see `display`), `rdpsnd` with sounds on (see `sound`).

use crate::error::ClientError;
use crate::ConnectParams;
use ironrdp_connector::{BitmapConfig, Config, Credentials, DesktopSize};
use ironrdp_pdu::gcc::{ConnectionType, KeyboardType};
use ironrdp_pdu::rdp::capability_sets::{client_codecs_capabilities, MajorPlatformType, RailSupportLevel};
use ironrdp_pdu::rdp::client_info::{PerformanceFlags, TimezoneInfo};

/// Largest desktop edge accepted from the caller or the server.
pub(crate) const MAX_DESKTOP_EDGE: u16 = 8192;

/// Checks a desktop size (ours or the server's) before a framebuffer is allocated for it.
pub(crate) fn check_desktop_size(width: u16, height: u16) -> Result<(), String> {
    if width == 0 || height == 0 || width > MAX_DESKTOP_EDGE || height > MAX_DESKTOP_EDGE {
        return Err(format!("unsupported desktop size {width}x{height} (1..={MAX_DESKTOP_EDGE} per side)"));
    }
    Ok(())
}

/// Splits `DOMAIN\user` when no domain was given separately.
fn split_domain(username: &str, domain: Option<&str>) -> (String, Option<String>) {
    let domain = domain.map(str::trim).filter(|d| !d.is_empty());
    match (domain, username.split_once('\\')) {
        (None, Some((domain, user))) if !domain.is_empty() && !user.is_empty() => {
            (user.to_owned(), Some(domain.to_owned()))
        }
        (domain, _) => (username.to_owned(), domain.map(str::to_owned)),
    }
}

pub(crate) fn connector_config(params: &ConnectParams) -> Result<Config, ClientError> {
    check_desktop_size(params.width, params.height).map_err(ClientError::InvalidParams)?;
    crate::display::check_color_depth(params.color_depth).map_err(ClientError::InvalidParams)?;
    if params.username.is_empty() {
        return Err(ClientError::InvalidParams("a user name is required".to_owned()));
    }
    let (username, domain) = split_domain(&params.username, params.domain.as_deref());
    let codec_switches: &[&str] = if params.graphics.remote_fx { &[] } else { &["remotefx:off"] };
    let codecs = client_codecs_capabilities(codec_switches).map_err(ClientError::protocol)?;
    let client_name: String = params.client_name.chars().take(15).collect();

    Ok(Config {
        desktop_size: DesktopSize { width: params.width, height: params.height },
        monitor_layout: None,
        desktop_scale_factor: 0,
        desktop_physical_size: None,
        desktop_orientation: None,
        device_scale_factor: None,
        monitor_extended_layout: None,
        relative_mouse_input: false,
        enable_tls: true,
        enable_credssp: true,
        enable_standard_rdp_security: false,
        credentials: Credentials::UsernamePassword { username, password: params.password.clone() },
        domain,
        client_build: 1,
        client_name: if client_name.is_empty() { "homedesk".to_owned() } else { client_name },
        keyboard_type: KeyboardType::IBM_ENHANCED,
        keyboard_subtype: 0,
        keyboard_functional_keys_count: 12,
        keyboard_layout: params.keyboard_layout,
        connection_type: ConnectionType::Lan,
        ime_file_name: String::new(),
        bitmap: Some(BitmapConfig { lossy_compression: false, color_depth: u32::from(params.color_depth), codecs }),
        dig_product_id: String::new(),
        // What mstsc/FreeRDP send; some servers expect a Windows-looking path.
        client_dir: "C:\\Windows\\System32\\mstscax.dll".to_owned(),
        alternate_shell: String::new(),
        work_dir: String::new(),
        remote_application_mode: false,
        rail_support_level: RailSupportLevel::empty(),
        platform: MajorPlatformType::UNSPECIFIED,
        hardware_id: None,
        request_data: None,
        autologon: true,
        enable_audio_playback: params.sounds,
        enable_audio_capture: false,
        performance_flags: PerformanceFlags::default(),
        license_cache: None,
        timezone_info: TimezoneInfo::default(),
        compression_type: None,
        // The workstation's pointer shapes become the page's CSS cursor (no software compositing).
        enable_server_pointer: true,
        pointer_software_rendering: false,
        multitransport_flags: None,
        support_dyn_vc_gfx_protocol: params.graphics.pipeline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        assert_eq!(split_domain("CORP\\alice", None), ("alice".to_owned(), Some("CORP".to_owned())));
        assert_eq!(split_domain("alice", Some("CORP")), ("alice".to_owned(), Some("CORP".to_owned())));
        assert_eq!(split_domain("alice", Some(" ")), ("alice".to_owned(), None));
        assert_eq!(split_domain("alice@corp.example", None), ("alice@corp.example".to_owned(), None));
    }

    #[test]
    fn sizes() {
        assert!(check_desktop_size(1024, 768).is_ok());
        assert!(check_desktop_size(0, 768).is_err());
        assert!(check_desktop_size(9000, 768).is_err());
    }
}

//! State-machine tests against an in-memory server: X.224 negotiation, TLS with rustls on the
//! other end, the first CredSSP message, the active session, and random bytes in every phase.

use super::*;
use crate::tls::tests::TestServer;
use crate::tls::sha256_hex;
use crate::ClientError;
use ironrdp_core::{decode, encode_vec};
use ironrdp_pdu::input::fast_path::{FastPathInput, KeyboardFlags};
use ironrdp_pdu::nego::{ConnectionConfirm, ConnectionRequest, FailureCode, NegoRequestData, ResponseFlags, SecurityProtocol};
use ironrdp_pdu::x224::X224Data;
use ironrdp_pdu::{gcc, mcs};
use rustls::ServerConnection;
use std::io::{Read as _, Write as _};
use std::sync::OnceLock;

const SERVER_NAME: &str = "ws1.example";

fn params(pin: Option<String>) -> ConnectParams {
    ConnectParams {
        username: "alice".to_owned(),
        password: "secret".to_owned(),
        domain: None,
        width: 1024,
        height: 768,
        server_name: SERVER_NAME.to_owned(),
        pinned_sha256: pin,
        client_name: "homedesk".to_owned(),
        keyboard_layout: 0x409,
        color_depth: 16,
        sounds: false,
        graphics: Default::default(),
    }
}

/// One certificate for all tests (key generation is the slow part).
fn test_server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| TestServer::new(SERVER_NAME, &[&rustls::version::TLS13, &rustls::version::TLS12]))
}

fn confirm(protocol: SecurityProtocol) -> Vec<u8> {
    encode_vec(&X224(ConnectionConfirm::Response { flags: ResponseFlags::empty(), protocol })).unwrap()
}

fn failure(code: FailureCode) -> Vec<u8> {
    encode_vec(&X224(ConnectionConfirm::Failure { code })).unwrap()
}

fn sent(events: &[Event]) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Send(bytes) => Some(bytes.as_slice()),
            _ => None,
        })
        .flatten()
        .copied()
        .collect()
}

/// Ciphertext from the client into the server; returns the plaintext the server got.
fn to_server(events: &[Event], server: &mut ServerConnection) -> Vec<u8> {
    let wire = sent(events);
    let mut rest = wire.as_slice();
    while !rest.is_empty() {
        server.read_tls(&mut rest).unwrap();
        server.process_new_packets().unwrap();
    }
    let mut plain = Vec::new();
    let _ = server.reader().read_to_end(&mut plain);
    plain
}

/// Whatever the server has to send, into the client.
fn to_client(server: &mut ServerConnection, connection: &mut Connection) -> Result<Vec<Event>, ClientError> {
    let mut wire = Vec::new();
    while server.wants_write() {
        server.write_tls(&mut wire).unwrap();
    }
    connection.receive(&wire)
}

/// A client past X.224 and TLS with `protocol` selected, and the server side of the TLS connection.
/// Returns the plaintext the server received right after the handshake.
fn connected_over_tls(protocol: SecurityProtocol) -> (Connection, ServerConnection, Vec<u8>) {
    connected_over_tls_with(params(None), protocol)
}

fn connected_over_tls_with(
    params: ConnectParams,
    protocol: SecurityProtocol,
) -> (Connection, ServerConnection, Vec<u8>) {
    let (mut connection, request) = Connection::new(params, Default::default()).unwrap();
    let _ = request;
    let events = connection.receive(&confirm(protocol)).unwrap();
    assert_eq!(connection.phase_name(), "tls");
    let mut server = test_server().connection();
    let mut plain = to_server(&events, &mut server);
    for _ in 0..10 {
        if !server.is_handshaking() && connection.phase_name() != "tls" {
            break;
        }
        let events = to_client(&mut server, &mut connection).unwrap();
        plain.extend(to_server(&events, &mut server));
    }
    assert!(!server.is_handshaking());
    (connection, server, plain)
}

#[test]
fn connection_request_offers_tls_and_nla() {
    let (_, request) = Connection::new(params(None), Default::default()).unwrap();
    let X224(request) = decode::<X224<ConnectionRequest>>(&request).unwrap();
    assert!(request.protocol.contains(SecurityProtocol::SSL));
    assert!(request.protocol.contains(SecurityProtocol::HYBRID));
    assert!(request.protocol.contains(SecurityProtocol::HYBRID_EX));
    match request.nego_data {
        Some(NegoRequestData::Cookie(cookie)) => assert_eq!(cookie.0, "alice"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn tls_only_server_gets_the_mcs_connect_initial_over_tls() {
    // The confirm arrives one byte at a time: nothing happens until it is complete.
    let (mut connection, _) = Connection::new(params(None), Default::default()).unwrap();
    let confirm = confirm(SecurityProtocol::SSL);
    let (last, head) = confirm.split_last().unwrap();
    for byte in head {
        assert!(connection.receive(&[*byte]).unwrap().is_empty());
    }
    let events = connection.receive(&[*last]).unwrap();
    assert!(matches!(events.as_slice(), [Event::Send(hello)] if hello[0] == 0x16), "ClientHello expected");

    let (connection, _server, plain) = connected_over_tls(SecurityProtocol::SSL);
    assert_eq!(connection.phase_name(), "connecting");
    assert_eq!(connection.server_certificate_sha256(), Some(sha256_hex(&test_server().cert_der)));
    assert!(!connection.is_active());
    assert!(connection.framebuffer().is_none());
    // The first thing inside TLS is the MCS Connect Initial with our desktop size.
    let X224(data) = decode::<X224<X224Data<'_>>>(&plain).unwrap();
    let initial = decode::<mcs::ConnectInitial>(&data.data).unwrap();
    let core: &gcc::ClientCoreData = &initial.conference_create_request.gcc_blocks().core;
    assert_eq!((core.desktop_width, core.desktop_height), (1024, 768));
    assert_eq!(core.keyboard_layout, 0x409);
    // The caller's colour depth, and the dynamic channels (Display Control, EGFX) ride on drdynvc.
    assert_eq!(core.optional_data.high_color_depth, Some(gcc::HighColorDepth::Rgb565Bpp16));
    let network = initial.conference_create_request.gcc_blocks().network.as_ref().expect("channels");
    let names: Vec<_> = network.channels.iter().filter_map(|c| c.name.as_str().map(str::to_owned)).collect();
    assert!(names.iter().any(|n| n == "drdynvc"), "{names:?}");
    assert!(names.iter().any(|n| n == "cliprdr"), "{names:?}");
}

/// The static channels the client announces in its MCS Connect Initial.
fn announced_channels(params: ConnectParams) -> Vec<String> {
    let (_, _, plain) = connected_over_tls_with(params, SecurityProtocol::SSL);
    let X224(data) = decode::<X224<X224Data<'_>>>(&plain).unwrap();
    let initial = decode::<mcs::ConnectInitial>(&data.data).unwrap();
    let network = initial.conference_create_request.gcc_blocks().network.as_ref().expect("channels");
    network.channels.iter().filter_map(|c| c.name.as_str().map(str::to_owned)).collect()
}

#[test]
fn the_sound_channel_is_announced_only_with_sounds_on() {
    let off = announced_channels(params(None));
    assert!(!off.iter().any(|n| n == "rdpsnd"), "{off:?}");
    let on = announced_channels(ConnectParams { sounds: true, ..params(None) });
    assert!(on.iter().any(|n| n == "rdpsnd"), "{on:?}");
    // Everything else stays as it was.
    assert_eq!(on.iter().filter(|n| *n != "rdpsnd").collect::<Vec<_>>(), off.iter().collect::<Vec<_>>());
}

#[test]
fn nla_server_gets_an_ntlm_negotiate_and_a_logon_failure_rejects_the_credentials() {
    use ironrdp_connector::sspi::credssp::NStatusCode;
    let (mut connection, mut server, plain) = connected_over_tls(SecurityProtocol::HYBRID_EX);
    assert_eq!(connection.phase_name(), "credssp");
    let request = TsRequest::from_buffer(&plain).unwrap();
    let token = request.nego_tokens.expect("NTLM token");
    assert!(token.starts_with(b"NTLMSSP\0"), "NTLM NEGOTIATE expected");

    let answer = TsRequest { error_code: Some(NStatusCode::LOGON_FAILURE), ..Default::default() };
    let mut bytes = Vec::new();
    answer.encode_ts_request(&mut bytes).unwrap();
    server.writer().write_all(&bytes).unwrap();
    assert_eq!(to_client(&mut server, &mut connection), Err(ClientError::CredentialsRejected));
    assert_eq!(connection.receive(&[1, 2, 3]), Err(ClientError::Closed));
}

#[test]
fn hang_up_during_sign_in_is_explained() {
    let (mut connection, _server, _) = connected_over_tls(SecurityProtocol::HYBRID_EX);
    // Only the NTLM NEGOTIATE went out: the password was never tested, so it is not "rejected".
    assert_eq!(connection.transport_closed(), Err(ClientError::ClosedDuringSignIn));
    assert_eq!(connection.transport_closed(), Ok(Vec::new()));

    let (mut connection, mut server, _) = connected_over_tls(SecurityProtocol::SSL);
    server.send_close_notify();
    assert_eq!(to_client(&mut server, &mut connection), Err(ClientError::ClosedDuringSignIn));
}

#[test]
fn wrong_pin_is_refused_before_anything_is_sent_inside_tls() {
    let (mut connection, _) = Connection::new(params(Some("0".repeat(64))), Default::default()).unwrap();
    let events = connection.receive(&confirm(SecurityProtocol::HYBRID_EX)).unwrap();
    let mut server = test_server().connection();
    to_server(&events, &mut server);
    let result = to_client(&mut server, &mut connection);
    assert_eq!(
        result,
        Err(ClientError::CertificateChanged {
            expected: "0".repeat(64),
            actual: sha256_hex(&test_server().cert_der)
        })
    );
    assert!(matches!(Connection::new(params(Some("xyz".to_owned())), Default::default()), Err(ClientError::InvalidParams(_))));
}

#[test]
fn negotiation_failures_are_explained() {
    for (code, expected) in [
        (FailureCode::SSL_NOT_ALLOWED_BY_SERVER, ClientError::StandardSecurityOnly),
        (FailureCode::HYBRID_REQUIRED_BY_SERVER, ClientError::NlaRequiredButDisabled),
    ] {
        let (mut connection, _) = Connection::new(params(None), Default::default()).unwrap();
        assert_eq!(connection.receive(&failure(code)), Err(expected));
    }
}

#[test]
fn input_before_the_session_is_ignored() {
    let (mut connection, _) = Connection::new(params(None), Default::default()).unwrap();
    assert_eq!(connection.input(Input::Key { code: "KeyA".into(), pressed: true }), Ok(Vec::new()));
    assert_eq!(connection.release_all(), Ok(Vec::new()));
    assert_eq!(connection.phase_name(), "negotiating");
    assert_eq!(connection.shutdown(), Ok(Vec::new()));
    assert_eq!(connection.receive(&[0]), Err(ClientError::Closed));
}

/// Puts a TLS-connected client straight into an active session of `width`x`height`.
fn active(width: u16, height: u16) -> (Connection, ServerConnection) {
    let (mut connection, server, _) = connected_over_tls(SecurityProtocol::SSL);
    let config = config::connector_config(&params(None)).unwrap();
    let static_channels = ClientConnector::new(config.clone(), SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)).static_channels;
    let stage = ActiveStageBuilder {
        static_channels,
        user_channel_id: 1007,
        io_channel_id: 1003,
        message_channel_id: None,
        share_id: 0x1_03EA,
        compression_type: None,
        enable_server_pointer: false,
        pointer_software_rendering: false,
    }
    .build();
    connection.phase = Phase::Active(Box::new(Session {
        stage,
        image: new_image(width, height).unwrap(),
        input: InputState::new(width, height, crate::layout::KeyboardLayout::by_id(0x409)),
        fastpath_input: true,
        activation_factory: ConnectionActivationFactory::new(config, 1003, 1007),
        refresh_rect_support: true,
        suppress_output_support: false,
        guard: UpdateGuard::default(),
    }));
    (connection, server)
}

#[test]
fn active_session_sends_input_and_ends_on_disconnect() {
    let (mut connection, mut server) = active(64, 48);
    assert!(connection.is_active());
    let frame = connection.framebuffer().unwrap();
    assert_eq!((frame.width, frame.height, frame.rgba.len()), (64, 48, 64 * 48 * 4));

    let events = connection.input(Input::Key { code: "KeyQ".into(), pressed: true }).unwrap();
    let plain = to_server(&events, &mut server);
    let input = decode::<FastPathInput>(&plain).unwrap();
    assert_eq!(input.input_events(), &[FastPathInputEvent::KeyboardEvent(KeyboardFlags::empty(), 0x10)]);

    let events = connection.release_all().unwrap();
    let input = decode::<FastPathInput>(&to_server(&events, &mut server)).unwrap();
    assert_eq!(input.input_events(), &[FastPathInputEvent::KeyboardEvent(KeyboardFlags::RELEASE, 0x10)]);

    // The server ends the session with an MCS Disconnect Provider Ultimatum.
    let ultimatum = encode_vec(&X224(McsMessage::DisconnectProviderUltimatum(DisconnectProviderUltimatum::from_reason(
        DisconnectReason::ProviderInitiated,
    ))))
    .unwrap();
    server.writer().write_all(&ultimatum).unwrap();
    let events = to_client(&mut server, &mut connection).unwrap();
    assert!(matches!(events.last(), Some(Event::Terminated(_))), "{events:?}");
    assert!(!connection.is_active());
    assert_eq!(connection.receive(&[0]), Err(ClientError::Closed));
}

#[test]
fn shutdown_sends_a_disconnect_and_close_notify() {
    let (mut connection, mut server) = active(32, 32);
    let events = connection.shutdown().unwrap();
    let plain = to_server(&events, &mut server);
    let X224(message) = decode::<X224<McsMessage<'_>>>(&plain).unwrap();
    assert!(matches!(message, McsMessage::DisconnectProviderUltimatum(_)));
    assert!(server.process_new_packets().unwrap().peer_has_closed());
    assert!(!connection.is_active());
    assert_eq!(connection.input(Input::CtrlAltDel), Ok(Vec::new()));
}

#[test]
fn workstation_hang_up_in_session_is_a_termination() {
    let (mut connection, _server) = active(32, 32);
    let events = connection.transport_closed().unwrap();
    assert!(matches!(events.as_slice(), [Event::Terminated(_)]));
}

// ---- Robustness: random bytes in every phase must give Ok or Err, never a panic. ---------------

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn u16le(&mut self, below: usize) -> [u8; 2] {
        (self.below(below) as u16).to_le_bytes()
    }

    /// Random data, sometimes shaped like a frame so decoders get past the first checks.
    fn message(&mut self) -> Vec<u8> {
        let len = 1 + self.below(400);
        let mut body = self.bytes(len);
        match self.below(7) {
            0 => {
                // TPKT + X.224 data + random
                let total = (len + 7) as u16;
                let mut frame = vec![3, 0, (total >> 8) as u8, total as u8, 2, 0xF0, 0x80];
                frame.append(&mut body);
                frame
            }
            1 => fast_path(body),
            2 => {
                // DER SEQUENCE (a CredSSP TsRequest shape)
                let mut frame = vec![0x30, 0x82, (len >> 8) as u8, len as u8];
                frame.append(&mut body);
                frame
            }
            3 => {
                // Fast-path bitmap update with one rectangle of random geometry, depth and flags.
                let mut update = vec![0x01, 0x00, 0x01, 0x00]; // updateType bitmap, one rectangle
                for _ in 0..6 {
                    update.extend(self.u16le(120)); // left, top, right, bottom, width, height
                }
                update.extend([8u16, 15, 16, 24, 32][self.below(5)].to_le_bytes());
                update.extend([0u16, 1, 0x400, 0x401][self.below(4)].to_le_bytes());
                update.extend((body.len() as u16).to_le_bytes());
                update.append(&mut body);
                fast_path_update(0x01, update)
            }
            4 => {
                // Surface command (set/stream surface bits) with a random codec payload (RemoteFX, ...).
                let mut command = vec![[0x01u8, 0x06][self.below(2)], 0x00];
                for _ in 0..4 {
                    command.extend(self.u16le(120));
                }
                command.extend([32u8, 0, 0, [0u8, 3, 0x0A, 0x0B, 1][self.below(5)]]);
                command.extend(self.u16le(100));
                command.extend(self.u16le(100));
                command.extend((body.len() as u32).to_le_bytes());
                command.append(&mut body);
                fast_path_update(0x04, command)
            }
            _ => body,
        }
    }
}

fn fast_path(mut body: Vec<u8>) -> Vec<u8> {
    let total = (body.len() + 3) as u16;
    let mut frame = vec![0x00, 0x80 | (total >> 8) as u8, total as u8];
    frame.append(&mut body);
    frame
}

/// A fast-path output PDU carrying one unfragmented, uncompressed update.
fn fast_path_update(code: u8, mut data: Vec<u8>) -> Vec<u8> {
    let mut update = vec![code];
    update.extend((data.len() as u16).to_le_bytes());
    update.append(&mut data);
    fast_path(update)
}

/// Feeds random messages in random chunks; after the first error only `Closed` may follow.
fn feed_random(connection: &mut Connection, server: Option<&mut ServerConnection>, rng: &mut Rng) {
    let message = rng.message();
    let result = match server {
        Some(server) => {
            server.writer().write_all(&message).unwrap();
            to_client(server, connection).map(|_| ())
        }
        None => {
            let mut result = Ok(());
            let mut rest = message.as_slice();
            while !rest.is_empty() && result.is_ok() {
                let n = 1 + rng.below(rest.len());
                result = connection.receive(&rest[..n]).map(|_| ());
                rest = &rest[n..];
            }
            result
        }
    };
    if result.is_err() {
        assert_eq!(connection.receive(&[0]), Err(ClientError::Closed));
    }
}

#[test]
fn random_bytes_never_panic_in_any_phase() {
    // HOMEDESK_FUZZ_ROUNDS / HOMEDESK_FUZZ_SEED run longer or different campaigns by hand.
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let mut rng = Rng(env("HOMEDESK_FUZZ_SEED").unwrap_or(0x9E37_79B9_7F4A_7C15) | 1);
    let rounds = env("HOMEDESK_FUZZ_ROUNDS").unwrap_or(200) as usize;
    for round in 0..rounds {
        // Before TLS: the X.224 confirm is expected.
        let (mut connection, _) = Connection::new(params(None), Default::default()).unwrap();
        for _ in 0..3 {
            feed_random(&mut connection, None, &mut rng);
        }
        // During the TLS handshake: garbage where the ServerHello should be.
        let (mut connection, _) = Connection::new(params(None), Default::default()).unwrap();
        connection.receive(&confirm(SecurityProtocol::SSL)).unwrap();
        feed_random(&mut connection, None, &mut rng);
        // Inside TLS, in the connection sequence, in CredSSP and in the active session.
        for phase in 0..3 {
            let (mut connection, mut server) = match phase {
                0 => {
                    let (c, s, _) = connected_over_tls(SecurityProtocol::SSL);
                    (c, s)
                }
                1 => {
                    let (c, s, _) = connected_over_tls(SecurityProtocol::HYBRID_EX);
                    (c, s)
                }
                _ => active(64 + (round % 64) as u16, 48),
            };
            for _ in 0..8 {
                feed_random(&mut connection, Some(&mut server), &mut rng);
                let _ = connection.input(Input::MouseMove { x: rng.next() as u16, y: rng.next() as u16 });
            }
            let _ = connection.transport_closed();
        }
    }
}

/// A Share Control PDU from the server on the I/O channel, as xrdp or Windows would send it.
fn server_share_control(pdu: ironrdp_pdu::rdp::headers::ShareControlPdu) -> Vec<u8> {
    use ironrdp_pdu::rdp::headers::ShareControlHeader;
    let header = ShareControlHeader { share_control_pdu: pdu, pdu_source: 1002, share_id: 0x1_03EA };
    let user_data = encode_vec(&header).unwrap();
    encode_vec(&X224(mcs::SendDataIndication {
        initiator_id: 1002,
        channel_id: 1003,
        user_data: std::borrow::Cow::Owned(user_data),
    }))
    .unwrap()
}

#[test]
fn deactivate_all_runs_the_reactivation_sequence_with_a_new_size() {
    use ironrdp_pdu::rdp::capability_sets::{
        Bitmap, BitmapDrawingFlags, CapabilitySet, DemandActive, Input as InputCaps, ServerDemandActive,
    };
    use ironrdp_pdu::rdp::client_info::CompressionType;
    use ironrdp_pdu::rdp::finalization_messages::FontPdu;
    use ironrdp_pdu::rdp::headers::{
        CompressionFlags, ServerDeactivateAll, ShareControlPdu, ShareDataHeader, StreamPriority,
    };

    let (mut connection, mut server) = active(64, 48);
    server.writer().write_all(&server_share_control(ShareControlPdu::ServerDeactivateAll(ServerDeactivateAll))).unwrap();
    assert!(to_client(&mut server, &mut connection).unwrap().is_empty());
    assert_eq!(connection.phase_name(), "reactivating");
    assert_eq!(connection.input(Input::Key { code: "KeyA".into(), pressed: true }), Ok(Vec::new()));
    assert_eq!(connection.framebuffer().map(|f| (f.width, f.height)), Some((64, 48)));

    let demand_active = ShareControlPdu::ServerDemandActive(ServerDemandActive {
        pdu: DemandActive {
            source_descriptor: "RDP".to_owned(),
            capability_sets: vec![
                CapabilitySet::Bitmap(Bitmap {
                    pref_bits_per_pix: 32,
                    desktop_width: 800,
                    desktop_height: 600,
                    desktop_resize_flag: true,
                    drawing_flags: BitmapDrawingFlags::empty(),
                }),
                CapabilitySet::Input(InputCaps {
                    input_flags: InputFlags::SCANCODES | InputFlags::MOUSEX | InputFlags::FASTPATH_INPUT_2,
                    keyboard_layout: 0,
                    keyboard_type: None,
                    keyboard_subtype: 0,
                    keyboard_function_key: 0,
                    keyboard_ime_filename: String::new(),
                }),
            ],
        },
    });
    server.writer().write_all(&server_share_control(demand_active)).unwrap();
    let events = to_client(&mut server, &mut connection).unwrap();
    // Confirm Active, Synchronize, Control (cooperate), Control (request), Font List.
    assert!(!to_server(&events, &mut server).is_empty());
    assert_eq!(connection.phase_name(), "reactivating");

    let font_map = ShareControlPdu::Data(ShareDataHeader {
        share_data_pdu: ShareDataPdu::FontMap(FontPdu::default()),
        stream_priority: StreamPriority::Medium,
        compression_flags: CompressionFlags::empty(),
        compression_type: CompressionType::K8,
    });
    server.writer().write_all(&server_share_control(font_map)).unwrap();
    let events = to_client(&mut server, &mut connection).unwrap();
    assert_eq!(events, vec![Event::Connected { width: 800, height: 600 }]);
    assert!(connection.is_active());
    assert_eq!(connection.framebuffer().map(|f| (f.width, f.height)), Some((800, 600)));
    // Input flows again, clamped to the new size.
    let events = connection.input(Input::MouseMove { x: 5000, y: 5000 }).unwrap();
    let input = decode::<FastPathInput>(&to_server(&events, &mut server)).unwrap();
    match input.input_events() {
        [FastPathInputEvent::MouseEvent(pdu)] => assert_eq!((pdu.x_position, pdu.y_position), (799, 599)),
        other => panic!("{other:?}"),
    }
}

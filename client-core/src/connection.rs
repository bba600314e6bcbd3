//! The connection state machine: X.224 → TLS → CredSSP → connection sequence → active session.
//!
//! IronRDP's `ironrdp-async` drives these steps with awaits on a socket; here each step runs when the
//! bytes it needs have arrived, so the whole client is a function of its input. Every phase owns
//! what it needs (connector, CredSSP sequence, session) and hands it to the next; an error ends the
//! connection for good. Frames are cut by the current step's `PduHint` (see `framing`).

use crate::clipboard::{self, Clipboard, ClipboardContent};
use crate::config::{self, check_desktop_size};
use crate::display;
use crate::error::{self, ClientError};
use crate::drive::{DriveError, IoId, IoOutcome};
use crate::framing::FrameBuffer;
use crate::guard::UpdateGuard;
use crate::input::{self, InputState};
use crate::layout::KeyboardLayout;
use crate::redirection::{self, Redirection};
use crate::sound::{self, Sound};
use crate::tls::{normalize_pin, TlsSession};
use crate::{ConnectParams, Devices, Event, Framebuffer, Input, Rect, Resize};
use core::net::{Ipv4Addr, SocketAddr};
use ironrdp_connector::connection_activation::{
    ConnectionActivationFactory, ConnectionActivationSequence, ConnectionActivationState,
};
use ironrdp_connector::credssp::CredsspSequence;
use ironrdp_connector::sspi::credssp::TsRequest;
use ironrdp_connector::sspi::generator::GeneratorState;
use ironrdp_connector::{
    ClientConnector, ClientConnectorState, ConnectionOutcome, ConnectionResult, Sequence as _, ServerName, State as _,
};
use ironrdp_core::WriteBuf;
use ironrdp_graphics::image_processing::PixelFormat;
use ironrdp_pdu::geometry::InclusiveRectangle;
use ironrdp_pdu::input::InputEventPdu;
use ironrdp_pdu::mcs::{DisconnectProviderUltimatum, DisconnectReason, McsMessage};
use ironrdp_pdu::rdp::capability_sets::InputFlags;
use ironrdp_pdu::rdp::headers::ShareDataPdu;
use ironrdp_pdu::x224::X224;
use ironrdp_pdu::input::fast_path::FastPathInputEvent;
use ironrdp_session::image::DecodedImage;
use ironrdp_session::{ActiveStage, ActiveStageBuilder, ActiveStageOutput, GracefulDisconnectReason};

/// Where the connection is. Boxed payloads keep the enum small and moves cheap.
enum Phase {
    /// X.224 Connection Request sent, waiting for the Connection Confirm (plaintext).
    Negotiating(Box<ClientConnector>),
    /// ClientHello sent, TLS handshake in progress.
    TlsHandshake(Box<ClientConnector>),
    /// NLA: CredSSP messages inside TLS.
    Credssp(Box<ClientConnector>, Box<CredsspSequence>),
    /// Basic settings, channels, licensing, capabilities, finalization.
    Connecting(Box<ClientConnector>),
    /// The desktop is live.
    Active(Box<Session>),
    /// The server deactivated the session and is running capabilities exchange again.
    Reactivating(Box<Session>, Box<ConnectionActivationSequence>),
    /// Terminated, failed or shut down.
    Ended,
}

/// Everything of an active session.
struct Session {
    stage: ActiveStage,
    image: DecodedImage,
    input: InputState,
    /// The server accepts fast-path input; otherwise slow-path Input PDUs are used.
    fastpath_input: bool,
    activation_factory: ConnectionActivationFactory,
    refresh_rect_support: bool,
    suppress_output_support: bool,
    /// Refuses updates IronRDP would panic on.
    guard: UpdateGuard,
}

pub(crate) struct Connection {
    phase: Phase,
    tls: Option<TlsSession>,
    /// Plaintext bytes before TLS (the X.224 confirm).
    raw: FrameBuffer,
    /// Decrypted bytes after TLS.
    plain: FrameBuffer,
    /// Ciphertext that arrived together with the X.224 confirm, fed to TLS once it exists.
    early_ciphertext: Vec<u8>,
    server_name: String,
    pin: Option<String>,
    fingerprint: Option<String>,
    /// CredSSP messages sent; from the second one on, the server holds our NTLM response.
    credssp_messages_sent: u32,
    /// The shared clipboard's state; outlives reactivations and may be set before the session.
    clipboard: Clipboard,
    /// The layout announced at connect: text is typed with its keys.
    keyboard_layout: KeyboardLayout,
    /// The user asked to log off (a "disconnected" answer then means the workstation refused).
    log_off_requested: bool,
    /// Redirected devices (drive, printer); `None` when none was asked for.
    redirection: Option<Redirection>,
    /// The workstation's sound; `None` when the caller wants none (the channel is not announced).
    sound: Option<Sound>,
    /// Fast-path frames kept for the bench's replay (`RdpClient::record_updates`); `None` normally.
    recorded: Option<Vec<Vec<u8>>>,
}

/// Fast-path input is allowed only if the server advertised it ([MS-RDPBCGR] 2.2.8.1.2).
fn fastpath_allowed(flags: InputFlags) -> bool {
    flags.intersects(InputFlags::FASTPATH_INPUT | InputFlags::FASTPATH_INPUT_2)
}

pub(crate) fn new_image(width: u16, height: u16) -> Result<DecodedImage, ClientError> {
    check_desktop_size(width, height).map_err(ClientError::protocol)?;
    Ok(DecodedImage::new(PixelFormat::RgbA32, width, height))
}

pub(crate) fn paint_rect(region: &InclusiveRectangle, image: &DecodedImage) -> Option<Rect> {
    let right = region.right.min(image.width().checked_sub(1)?);
    let bottom = region.bottom.min(image.height().checked_sub(1)?);
    if region.left > right || region.top > bottom {
        return None;
    }
    Some(Rect { x: region.left, y: region.top, width: right - region.left + 1, height: bottom - region.top + 1 })
}

/// The workstation answered a log off request with "denied" (MS-RDPBCGR 2.2.2.3), as Windows and
/// xrdp do while a user is signed in: the client has disconnected instead.
pub(crate) const LOG_OFF_REFUSED: &str = "The workstation does not allow logging off from here: you are disconnected \
     and your session stays open. Log off from the workstation's own menu to end it.";

fn termination_reason(reason: &GracefulDisconnectReason) -> String {
    match reason {
        GracefulDisconnectReason::ServerInitiated => "The workstation ended the session.".to_owned(),
        GracefulDisconnectReason::UserInitiated => "The session was disconnected.".to_owned(),
        GracefulDisconnectReason::Other(description) => format!("The workstation ended the session: {description}"),
    }
}

impl Connection {
    pub(crate) fn new(params: ConnectParams, devices: Devices) -> Result<(Self, Vec<u8>), ClientError> {
        let pin = params.pinned_sha256.as_deref().map(normalize_pin).transpose()?;
        let config = config::connector_config(&params)?;
        let mut connector = ClientConnector::new(config, SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0))
            .with_static_channel(clipboard::channel())
            .with_static_channel(display::dynamic_channels());
        let redirection = (!devices.is_empty()).then(|| {
            connector.attach_static_channel(redirection::channel(&devices, &params.client_name));
            Redirection::new(devices)
        });
        let sound = params.sounds.then(|| {
            let (rdpsnd, sound) = sound::channel();
            connector.attach_static_channel(rdpsnd);
            sound
        });
        let mut buf = WriteBuf::new();
        let written = connector.step_no_input(&mut buf).map_err(|e| error::from_connector(&e))?;
        let request = written.size().map(|n| buf.filled()[..n].to_vec()).unwrap_or_default();
        let connection = Self {
            phase: Phase::Negotiating(Box::new(connector)),
            tls: None,
            raw: FrameBuffer::new(),
            plain: FrameBuffer::new(),
            early_ciphertext: Vec::new(),
            keyboard_layout: KeyboardLayout::by_id(params.keyboard_layout),
            server_name: params.server_name,
            pin,
            fingerprint: None,
            credssp_messages_sent: 0,
            clipboard: Clipboard::default(),
            log_off_requested: false,
            redirection,
            sound,
            recorded: None,
        };
        Ok((connection, request))
    }

    pub(crate) fn receive(&mut self, bytes: &[u8]) -> Result<Vec<Event>, ClientError> {
        if matches!(self.phase, Phase::Ended) {
            return Err(ClientError::Closed);
        }
        let mut events = Vec::new();
        match self.receive_inner(bytes, &mut events) {
            Ok(()) => Ok(events),
            Err(error) => {
                self.end();
                Err(error)
            }
        }
    }

    fn receive_inner(&mut self, bytes: &[u8], events: &mut Vec<Event>) -> Result<(), ClientError> {
        if matches!(self.phase, Phase::Negotiating(_)) {
            self.raw.push(bytes)?;
            self.pump(events)?;
            let early = core::mem::take(&mut self.early_ciphertext);
            return self.feed_ciphertext(&early, events);
        }
        self.feed_ciphertext(bytes, events)
    }

    /// Decrypts `bytes` one TLS read at a time, processing the plaintext in between.
    fn feed_ciphertext(&mut self, bytes: &[u8], events: &mut Vec<Event>) -> Result<(), ClientError> {
        let mut rest = bytes;
        while !rest.is_empty() && !matches!(self.phase, Phase::Ended) {
            let tls = self.tls.as_mut().ok_or_else(|| ClientError::protocol("data arrived before TLS started"))?;
            let before = rest.len();
            let input = tls.receive_some(&mut rest)?;
            if !input.to_send.is_empty() {
                events.push(Event::Send(input.to_send));
            }
            self.plain.push(&input.plaintext)?;
            self.pump(events)?;
            if input.peer_closed {
                return self.on_peer_closed(events);
            }
            if rest.len() == before {
                return Err(ClientError::protocol("TLS made no progress on received data"));
            }
        }
        Ok(())
    }

    /// The transport ended (TCP EOF / WebSocket closed after the workstation's last byte).
    pub(crate) fn transport_closed(&mut self) -> Result<Vec<Event>, ClientError> {
        if matches!(self.phase, Phase::Ended) {
            return Ok(Vec::new());
        }
        let mut events = Vec::new();
        let result = self.on_peer_closed(&mut events);
        self.end();
        result.map(|()| events)
    }

    fn on_peer_closed(&mut self, events: &mut Vec<Event>) -> Result<(), ClientError> {
        match self.phase {
            Phase::Ended => Ok(()),
            Phase::Active(_) | Phase::Reactivating(..) => {
                events.push(Event::Terminated("The workstation closed the connection.".to_owned()));
                self.end();
                Ok(())
            }
            // A server that does not like the NTLM response (wrong user name or password) simply
            // hangs up, as freerdp-based servers do; mstsc reports this as a failed logon too.
            Phase::Credssp(..) if self.credssp_messages_sent >= 2 => Err(ClientError::CredentialsRejected),
            _ => Err(ClientError::ClosedDuringSignIn),
        }
    }

    fn end(&mut self) {
        self.phase = Phase::Ended;
        self.plain = FrameBuffer::new();
        self.raw = FrameBuffer::new();
    }

    /// Runs steps while the buffered bytes allow progress.
    fn pump(&mut self, events: &mut Vec<Event>) -> Result<(), ClientError> {
        loop {
            let phase = core::mem::replace(&mut self.phase, Phase::Ended);
            let (next, progressed) = match phase {
                Phase::Negotiating(connector) => self.step_negotiation(connector, events)?,
                Phase::TlsHandshake(connector) => self.step_tls_handshake(connector, events)?,
                Phase::Credssp(connector, sequence) => self.step_credssp(connector, sequence, events)?,
                Phase::Connecting(connector) => self.step_connecting(connector, events)?,
                Phase::Active(session) => self.step_active(session, events)?,
                Phase::Reactivating(session, activation) => self.step_reactivation(session, activation, events)?,
                Phase::Ended => (Phase::Ended, false),
            };
            self.phase = next;
            if !progressed {
                return Ok(());
            }
        }
    }

    fn send(&mut self, plaintext: &[u8], events: &mut Vec<Event>) -> Result<(), ClientError> {
        if plaintext.is_empty() {
            return Ok(());
        }
        let tls = self.tls.as_mut().ok_or_else(|| ClientError::protocol("TLS is not established"))?;
        let ciphertext = tls.send(plaintext)?;
        if !ciphertext.is_empty() {
            events.push(Event::Send(ciphertext));
        }
        Ok(())
    }

    fn send_written(
        &mut self,
        buf: &WriteBuf,
        written: ironrdp_connector::Written,
        events: &mut Vec<Event>,
    ) -> Result<(), ClientError> {
        if let Some(size) = written.size() {
            let bytes = buf.filled().get(..size).ok_or_else(|| ClientError::protocol("encoder size mismatch"))?;
            let bytes = bytes.to_vec();
            self.send(&bytes, events)?;
        }
        Ok(())
    }

    // ---- X.224 -------------------------------------------------------------------------------

    fn step_negotiation(
        &mut self,
        mut connector: Box<ClientConnector>,
        events: &mut Vec<Event>,
    ) -> Result<(Phase, bool), ClientError> {
        let Some(hint) = connector.next_pdu_hint() else {
            return Err(ClientError::protocol("unexpected connector state during negotiation"));
        };
        let Some(frame) = self.raw.next_by_hint(hint)? else {
            return Ok((Phase::Negotiating(connector), false));
        };
        let mut buf = WriteBuf::new();
        connector.step(&frame, None, &mut buf).map_err(|e| error::from_connector(&e))?;
        if !connector.should_perform_security_upgrade() {
            return Ok((Phase::Negotiating(connector), true));
        }
        if let ClientConnectorState::EnhancedSecurityUpgrade { selected_protocol } = &connector.state {
            if selected_protocol.is_standard_rdp_security() {
                return Err(ClientError::StandardSecurityOnly);
            }
        }
        let (tls, hello) = TlsSession::start(&self.server_name, self.pin.clone())?;
        self.tls = Some(tls);
        events.push(Event::Send(hello));
        self.early_ciphertext = self.raw.take_all();
        Ok((Phase::TlsHandshake(connector), true))
    }

    // ---- TLS ---------------------------------------------------------------------------------

    fn step_tls_handshake(
        &mut self,
        mut connector: Box<ClientConnector>,
        events: &mut Vec<Event>,
    ) -> Result<(Phase, bool), ClientError> {
        let tls = self.tls.as_ref().ok_or_else(|| ClientError::protocol("TLS is not started"))?;
        if tls.is_handshaking() {
            return Ok((Phase::TlsHandshake(connector), false));
        }
        self.fingerprint = tls.fingerprint();
        let server_public_key = tls.server_public_key()?;
        if connector.should_perform_security_upgrade() {
            connector.mark_security_upgrade_as_done();
        }
        if !connector.should_perform_credssp() {
            return Ok((Phase::Connecting(connector), true));
        }
        let ClientConnectorState::Credssp { selected_protocol } = connector.state else {
            return Err(ClientError::protocol("unexpected connector state before NLA"));
        };
        let (mut sequence, request) = CredsspSequence::init(
            connector.config.credentials.clone(),
            connector.config.domain.as_deref(),
            selected_protocol,
            ServerName::new(self.server_name.clone()),
            server_public_key,
            None, // NTLM only: Kerberos would need a KDC reachable from the browser.
        )
        .map_err(|e| error::from_connector(&e))?;
        self.credssp_round(&mut sequence, request, events)?;
        Ok((Phase::Credssp(connector, Box::new(sequence)), true))
    }

    // ---- CredSSP -----------------------------------------------------------------------------

    /// Processes one server TsRequest (or the initial empty one) and sends the answer.
    fn credssp_round(
        &mut self,
        sequence: &mut CredsspSequence,
        request: TsRequest,
        events: &mut Vec<Event>,
    ) -> Result<(), ClientError> {
        let client_state = {
            let mut generator = sequence.process_ts_request(request);
            match generator.start() {
                GeneratorState::Completed(result) => result.map_err(|e| error::from_sspi(&e))?,
                // Only Kerberos suspends, to reach a KDC over the network: not possible here.
                GeneratorState::Suspended(_) => return Err(ClientError::KerberosUnsupported),
            }
        };
        let mut buf = WriteBuf::new();
        let written = sequence.handle_process_result(client_state, &mut buf).map_err(|e| error::from_connector(&e))?;
        if written.size().is_some() {
            self.credssp_messages_sent += 1;
        }
        self.send_written(&buf, written, events)
    }

    fn step_credssp(
        &mut self,
        mut connector: Box<ClientConnector>,
        mut sequence: Box<CredsspSequence>,
        events: &mut Vec<Event>,
    ) -> Result<(Phase, bool), ClientError> {
        let finished = match sequence.next_pdu_hint() {
            None => true,
            Some(hint) => {
                let Some(frame) = self.plain.next_by_hint(hint)? else {
                    return Ok((Phase::Credssp(connector, sequence), false));
                };
                match sequence.decode_server_message(&frame).map_err(|e| error::from_connector(&e))? {
                    Some(request) => {
                        self.credssp_round(&mut sequence, request, events)?;
                        false
                    }
                    None => true,
                }
            }
        };
        if !finished {
            return Ok((Phase::Credssp(connector, sequence), true));
        }
        if connector.should_perform_credssp() {
            connector.mark_credssp_as_done();
        }
        Ok((Phase::Connecting(connector), true))
    }

    // ---- Connection sequence -----------------------------------------------------------------

    fn step_connecting(
        &mut self,
        mut connector: Box<ClientConnector>,
        events: &mut Vec<Event>,
    ) -> Result<(Phase, bool), ClientError> {
        if let Some(outcome) = connector.state.take_outcome() {
            return match outcome {
                ConnectionOutcome::Connected(result) => Ok((self.activate(result, events)?, true)),
                ConnectionOutcome::Redirected(_) => Err(ClientError::protocol(
                    "the workstation redirected the connection to another server, which is not supported",
                )),
            };
        }
        let mut buf = WriteBuf::new();
        if connector.should_perform_multitransport() {
            // No UDP from a browser: decline, the session continues over this connection.
            let written = connector.skip_multitransport(&mut buf).map_err(|e| error::from_connector(&e))?;
            self.send_written(&buf, written, events)?;
            return Ok((Phase::Connecting(connector), true));
        }
        let written = match connector.next_pdu_hint() {
            None => {
                if connector.state.is_terminal() || matches!(connector.state, ClientConnectorState::Consumed) {
                    return Err(ClientError::protocol("the connection sequence stopped unexpectedly"));
                }
                connector.step_no_input(&mut buf)
            }
            Some(hint) => {
                let Some(frame) = self.plain.next_by_hint(hint)? else {
                    return Ok((Phase::Connecting(connector), false));
                };
                connector.step(&frame, None, &mut buf)
            }
        }
        .map_err(|e| error::from_connector(&e))?;
        self.send_written(&buf, written, events)?;
        Ok((Phase::Connecting(connector), true))
    }

    fn activate(&mut self, result: ConnectionResult, events: &mut Vec<Event>) -> Result<Phase, ClientError> {
        let size = result.desktop_size;
        let image = new_image(size.width, size.height)?;
        let mut stage = ActiveStageBuilder {
            static_channels: result.static_channels,
            user_channel_id: result.user_channel_id,
            io_channel_id: result.io_channel_id,
            message_channel_id: result.message_channel_id,
            share_id: result.share_id,
            compression_type: result.compression_type,
            enable_server_pointer: result.enable_server_pointer,
            pointer_software_rendering: result.pointer_software_rendering,
        }
        .build();
        stage.set_window_support_level(result.window_support_level);
        tracing::info!(width = size.width, height = size.height, "RDP session active");
        events.push(Event::Connected { width: size.width, height: size.height });
        Ok(Phase::Active(Box::new(Session {
            stage,
            image,
            input: InputState::new(size.width, size.height, self.keyboard_layout),
            fastpath_input: fastpath_allowed(result.input_flags),
            activation_factory: result.activation_factory,
            refresh_rect_support: result.refresh_rect_support,
            suppress_output_support: result.suppress_output_support,
            guard: UpdateGuard::default(),
        })))
    }

    // ---- Active session ----------------------------------------------------------------------

    fn step_active(&mut self, mut session: Box<Session>, events: &mut Vec<Event>) -> Result<(Phase, bool), ClientError> {
        let Some((action, frame)) = self.plain.next_pdu()? else {
            return Ok((Phase::Active(session), false));
        };
        session.guard.check(action, &frame)?;
        if let (Some(recorded), ironrdp_pdu::Action::FastPath) = (self.recorded.as_mut(), action) {
            recorded.push(frame.to_vec());
        }
        let size_before = (session.image.width(), session.image.height());
        let outputs = session
            .stage
            .process(&mut session.image, action, &frame, None)
            .map_err(|e| error::from_session(&e))?;
        let size_after = (session.image.width(), session.image.height());
        if size_after != size_before {
            // The graphics pipeline's ResetGraphics resized the image (e.g. after a resize request).
            session.input.set_desktop_size(size_after.0, size_after.1);
            events.push(Event::Connected { width: size_after.0, height: size_after.1 });
        }
        let mut deactivated = false;
        for output in outputs {
            match output {
                ActiveStageOutput::Terminate(GracefulDisconnectReason::UserInitiated) if self.log_off_requested => {
                    events.push(Event::Terminated(LOG_OFF_REFUSED.to_owned()));
                    return Ok((Phase::Ended, false));
                }
                ActiveStageOutput::Terminate(reason) => {
                    events.push(Event::Terminated(termination_reason(&reason)));
                    return Ok((Phase::Ended, false));
                }
                ActiveStageOutput::DeactivateAll => deactivated = true,
                ActiveStageOutput::ServerRedirection(_) => {
                    return Err(ClientError::protocol(
                        "the workstation redirected the session to another server, which is not supported",
                    ))
                }
                other => self.session_output(&session, other, events)?,
            }
        }
        for frame in self.clipboard.drain(&mut session.stage, events)? {
            self.send(&frame, events)?;
        }
        if let Some(redirection) = self.redirection.as_mut() {
            for frame in redirection.drain(&mut session.stage, events)? {
                self.send(&frame, events)?;
            }
        }
        if let Some(sound) = self.sound.as_mut() {
            sound.drain(&mut session.stage, events);
        }
        if session.stage.take_bitmap_recovery_request() {
            let (width, height) = (session.image.width(), session.image.height());
            let frames = session
                .stage
                .request_full_redraw(width, height, session.refresh_rect_support, session.suppress_output_support)
                .map_err(|e| error::from_session(&e))?;
            for frame in frames {
                self.send(&frame, events)?;
            }
        }
        if deactivated {
            tracing::debug!("server deactivated the session; running the reactivation sequence");
            let activation = Box::new(session.activation_factory.create());
            return Ok((Phase::Reactivating(session, activation), true));
        }
        Ok((Phase::Active(session), true))
    }

    /// Outputs shared by received frames and input processing.
    fn session_output(
        &mut self,
        session: &Session,
        output: ActiveStageOutput,
        events: &mut Vec<Event>,
    ) -> Result<(), ClientError> {
        match output {
            ActiveStageOutput::ResponseFrame(frame) => self.send(&frame, events)?,
            ActiveStageOutput::GraphicsUpdate(region) => {
                if let Some(rect) = paint_rect(&region, &session.image) {
                    events.push(Event::Paint(rect));
                }
            }
            ActiveStageOutput::PointerDefault => events.push(Event::PointerDefault),
            ActiveStageOutput::PointerHidden => events.push(Event::PointerHidden),
            ActiveStageOutput::PointerPosition { x, y } => events.push(Event::PointerPosition { x, y }),
            ActiveStageOutput::PointerBitmap(pointer) => events.push(Event::PointerBitmap {
                width: pointer.width,
                height: pointer.height,
                hotspot_x: pointer.hotspot_x,
                hotspot_y: pointer.hotspot_y,
                rgba: pointer.bitmap_data.clone(),
            }),
            ActiveStageOutput::LogonErrors(info) => tracing::info!(?info, "logon notification"),
            other => tracing::debug!(?other, "session output not used"),
        }
        Ok(())
    }

    fn step_reactivation(
        &mut self,
        mut session: Box<Session>,
        mut activation: Box<ConnectionActivationSequence>,
        events: &mut Vec<Event>,
    ) -> Result<(Phase, bool), ClientError> {
        match activation.connection_activation_state() {
            ConnectionActivationState::Finalized {
                desktop_size,
                share_id,
                input_flags,
                static_channel_chunk_size,
                enable_server_pointer,
                pointer_software_rendering,
                refresh_rect_support,
                suppress_output_support,
                window_support_level,
            } => {
                let (width, height) = (desktop_size.width, desktop_size.height);
                if (width, height) != (session.image.width(), session.image.height()) {
                    session.image = new_image(width, height)?;
                    session.input.set_desktop_size(width, height);
                }
                if !session.stage.reactivate(
                    activation.io_channel_id(),
                    activation.user_channel_id(),
                    share_id,
                    enable_server_pointer,
                    pointer_software_rendering,
                    static_channel_chunk_size,
                ) {
                    return Err(ClientError::protocol("the workstation reactivated with invalid channel settings"));
                }
                session.stage.set_window_support_level(window_support_level);
                session.fastpath_input = fastpath_allowed(input_flags);
                session.refresh_rect_support = refresh_rect_support;
                session.suppress_output_support = suppress_output_support;
                session.guard = UpdateGuard::default(); // the fast-path processor starts afresh too
                events.push(Event::Connected { width, height });
                return Ok((Phase::Active(session), true));
            }
            ConnectionActivationState::Redirected { .. } => {
                return Err(ClientError::protocol(
                    "the workstation redirected the session to another server, which is not supported",
                ))
            }
            ConnectionActivationState::Consumed => {
                return Err(ClientError::protocol("the reactivation sequence stopped unexpectedly"))
            }
            _ => {}
        }
        let mut buf = WriteBuf::new();
        let written = match activation.next_pdu_hint() {
            None => activation.step_no_input(&mut buf),
            Some(hint) => {
                let Some(frame) = self.plain.next_by_hint(hint)? else {
                    return Ok((Phase::Reactivating(session, activation), false));
                };
                activation.step(&frame, None, &mut buf)
            }
        }
        .map_err(|e| error::from_connector(&e))?;
        self.send_written(&buf, written, events)?;
        Ok((Phase::Reactivating(session, activation), true))
    }

    // ---- Input and shutdown ------------------------------------------------------------------

    pub(crate) fn input(&mut self, input: Input) -> Result<Vec<Event>, ClientError> {
        self.with_session_input(|session| session.input.translate(input))
    }

    pub(crate) fn release_all(&mut self) -> Result<Vec<Event>, ClientError> {
        self.with_session_input(|session| session.input.release_all())
    }

    fn with_session_input(
        &mut self,
        make: impl FnOnce(&mut Session) -> Vec<FastPathInputEvent>,
    ) -> Result<Vec<Event>, ClientError> {
        if !matches!(self.phase, Phase::Active(_)) {
            // Connecting, reactivating or ended: input has nowhere to go.
            return Ok(Vec::new());
        }
        let Phase::Active(session) = core::mem::replace(&mut self.phase, Phase::Ended) else {
            return Ok(Vec::new());
        };
        let mut session = session;
        let mut events = Vec::new();
        let result = self.send_input(&mut session, make, &mut events);
        self.phase = Phase::Active(session);
        match result {
            Ok(()) => Ok(events),
            Err(error) => {
                self.end();
                Err(error)
            }
        }
    }

    fn send_input(
        &mut self,
        session: &mut Session,
        make: impl FnOnce(&mut Session) -> Vec<FastPathInputEvent>,
        events: &mut Vec<Event>,
    ) -> Result<(), ClientError> {
        let input_events = make(session);
        if input_events.is_empty() {
            return Ok(());
        }
        if session.fastpath_input {
            let outputs = session
                .stage
                .process_fastpath_input(&mut session.image, &input_events)
                .map_err(|e| error::from_session(&e))?;
            for output in outputs {
                self.session_output(session, output, events)?;
            }
        } else {
            let mut buf = WriteBuf::new();
            let pdu = ShareDataPdu::Input(InputEventPdu(input::to_slow_path(&input_events)));
            session.stage.encode_static(&mut buf, pdu).map_err(|e| error::from_session(&e))?;
            let bytes = buf.filled().to_vec();
            self.send(&bytes, events)?;
        }
        Ok(())
    }

    /// Requests a monitor layout of about `width` x `height` over Display Control, when it is open.
    pub(crate) fn resize(&mut self, width: u16, height: u16) -> Result<Resize, ClientError> {
        if matches!(self.phase, Phase::Ended) {
            return Err(ClientError::Closed);
        }
        let Phase::Active(session) = &mut self.phase else {
            return Ok(Resize::ScaleToFit);
        };
        let (width, height) = display::monitor_size(width, height);
        let Some(encoded) = session.stage.encode_resize(u32::from(width), u32::from(height), None, None) else {
            return Ok(Resize::ScaleToFit);
        };
        let mut events = Vec::new();
        let result = encoded.map_err(|e| error::from_session(&e)).and_then(|frame| self.send(&frame, &mut events));
        match result {
            Ok(()) => Ok(Resize::Requested { width, height, events }),
            Err(error) => {
                self.end();
                Err(error)
            }
        }
    }

    /// Sends the Shutdown Request; the server's answer (denied, or its own disconnect) ends the session.
    pub(crate) fn log_off(&mut self) -> Result<Vec<Event>, ClientError> {
        if matches!(self.phase, Phase::Ended) {
            return Err(ClientError::Closed);
        }
        let Phase::Active(session) = &mut self.phase else {
            return Ok(Vec::new());
        };
        self.log_off_requested = true;
        let mut events = Vec::new();
        let result = session.stage.graceful_shutdown().map_err(|e| error::from_session(&e)).and_then(|outputs| {
            outputs.into_iter().try_for_each(|output| match output {
                ActiveStageOutput::ResponseFrame(frame) => self.send(&frame, &mut events),
                _ => Ok(()),
            })
        });
        match result {
            Ok(()) => Ok(events),
            Err(error) => {
                self.end();
                Err(error)
            }
        }
    }

    /// A deferred drive read or write finished: its answer goes to the workstation. Dropped when the
    /// session is not active (the channel that asked is gone or restarting; its requests were forgotten).
    pub(crate) fn complete_drive_io(
        &mut self,
        id: IoId,
        outcome: Result<IoOutcome, DriveError>,
    ) -> Result<Vec<Event>, ClientError> {
        let mut events = Vec::new();
        let (Phase::Active(session), Some(redirection)) = (&mut self.phase, self.redirection.as_mut()) else {
            return Ok(events);
        };
        let result = redirection
            .complete_drive_io(&mut session.stage, id, outcome)
            .and_then(|frames| frames.iter().try_for_each(|frame| self.send(frame, &mut events)));
        match result {
            Ok(()) => Ok(events),
            Err(error) => {
                self.end();
                Err(error)
            }
        }
    }

    /// The page's clipboard; announced now if the session is active, else once it is.
    pub(crate) fn set_local_clipboard(&mut self, content: ClipboardContent) -> Result<Vec<Event>, ClientError> {
        let mut events = Vec::new();
        let stage = match &mut self.phase {
            Phase::Ended => return Err(ClientError::Closed),
            Phase::Active(session) => Some(&mut session.stage),
            _ => None,
        };
        let result = match self.clipboard.set_local(stage, content, &mut events) {
            Ok(Some(frame)) => self.send(&frame, &mut events),
            Ok(None) => Ok(()),
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => Ok(events),
            Err(error) => {
                self.end();
                Err(error)
            }
        }
    }

    pub(crate) fn shutdown(&mut self) -> Result<Vec<Event>, ClientError> {
        let phase = core::mem::replace(&mut self.phase, Phase::Ended);
        let mut events = Vec::new();
        let session_established = matches!(phase, Phase::Active(_) | Phase::Reactivating(..));
        if matches!(phase, Phase::Ended | Phase::Negotiating(_)) {
            self.end();
            return Ok(events);
        }
        if session_established {
            let ultimatum = X224(McsMessage::DisconnectProviderUltimatum(DisconnectProviderUltimatum::from_reason(
                DisconnectReason::UserRequested,
            )));
            let bytes = ironrdp_core::encode_vec(&ultimatum)
                .map_err(|e| ClientError::protocol(format!("cannot encode the disconnect request: {e}")))?;
            self.send(&bytes, &mut events)?;
        }
        if let Some(tls) = self.tls.as_mut() {
            let close = tls.close()?;
            if !close.is_empty() {
                events.push(Event::Send(close));
            }
        }
        self.end();
        Ok(events)
    }

    pub(crate) fn record_updates(&mut self) {
        self.recorded = Some(Vec::new());
    }

    pub(crate) fn take_recording(&mut self) -> Option<crate::replay::Recording> {
        let frames = self.recorded.take().filter(|frames| !frames.is_empty())?;
        let frame = self.framebuffer()?;
        Some(crate::replay::Recording { width: frame.width, height: frame.height, frames })
    }

    pub(crate) fn framebuffer(&self) -> Option<Framebuffer<'_>> {
        let session = match &self.phase {
            Phase::Active(session) | Phase::Reactivating(session, _) => session,
            _ => return None,
        };
        Some(Framebuffer { width: session.image.width(), height: session.image.height(), rgba: session.image.data() })
    }

    pub(crate) fn server_certificate_sha256(&self) -> Option<String> {
        self.fingerprint.clone().or_else(|| self.tls.as_ref().and_then(TlsSession::fingerprint))
    }

    pub(crate) fn is_active(&self) -> bool {
        matches!(self.phase, Phase::Active(_))
    }

    pub(crate) fn sound_format_agreed(&self) -> bool {
        self.sound.as_ref().is_some_and(Sound::format_agreed)
    }

    /// Which phase the connection is in (for tests and logs).
    #[cfg(test)]
    pub(crate) fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::Negotiating(_) => "negotiating",
            Phase::TlsHandshake(_) => "tls",
            Phase::Credssp(..) => "credssp",
            Phase::Connecting(_) => "connecting",
            Phase::Active(_) => "active",
            Phase::Reactivating(..) => "reactivating",
            Phase::Ended => "ended",
        }
    }
}


#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;

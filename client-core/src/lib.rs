//! Homedesk's RDP client core: everything between raw workstation bytes and a framebuffer.
//!
//! The browser's WebSocket is a byte pipe to the workstation's RDP port, so this crate does the whole
//! protocol itself: X.224 negotiation, TLS (rustls) end to end, NLA (CredSSP/NTLM) when the server
//! wants it, the IronRDP connection sequence, decoding the session into an RGBA framebuffer, and
//! keyboard/mouse encoding. It is sans-I/O and push based — feed it received bytes, send the bytes it
//! returns — so the same code runs in the browser (wasm32, driven from WebSocket callbacks) and in
//! native tests (driven over TCP). It reads no clock, spawns nothing and never blocks.
//!
//! ```text
//! let (mut client, first) = RdpClient::new(params)?;   // send `first`
//! on bytes:  for event in client.receive(&bytes)? { Send → write, Connected/Paint → draw, Terminated → end }
//! on input:  client.input(Input::Key { code: "KeyA".into(), pressed: true })?  (events as above)
//! on close:  client.transport_closed()  → Terminated, or the error explaining a close during sign-in
//! ```
//!
//! Modules: `connection` (the state machine), `tls` (rustls with certificate pinning), `framing`
//! (frames out of arbitrary chunks), `guard` (refuses updates IronRDP would panic on), `input` and
//! `keymap` (page events → RDP input), `config` (connector settings), `error` (user-facing errors).

mod config;
mod connection;
mod error;
mod framing;
mod guard;
mod input;
mod keymap;
mod tls;

pub use error::ClientError;
pub use tls::sha256_hex;

/// Everything needed to connect to one workstation.
#[derive(Clone)]
pub struct ConnectParams {
    pub username: String,
    pub password: String,
    /// Windows domain; `None` for a local account. A `DOMAIN\user` user name is split when this is `None`.
    pub domain: Option<String>,
    /// Requested desktop size in pixels (1..=8192 each); the server may choose another (see `Connected`).
    pub width: u16,
    pub height: u16,
    /// Workstation host name (or IP literal): TLS SNI and the CredSSP target `TERMSRV/<name>`.
    pub server_name: String,
    /// Expected certificate fingerprint (64 hex, see docs/contracts.md); `None` = trust on first use.
    pub pinned_sha256: Option<String>,
    /// Name of this client as the workstation shows it (at most 15 characters are sent).
    pub client_name: String,
    /// Windows keyboard layout id, e.g. `0x409` (US English).
    pub keyboard_layout: u32,
}

impl core::fmt::Debug for ConnectParams {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ConnectParams")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("domain", &self.domain)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("server_name", &self.server_name)
            .field("pinned_sha256", &self.pinned_sha256)
            .field("client_name", &self.client_name)
            .field("keyboard_layout", &self.keyboard_layout)
            .finish()
    }
}

/// A rectangle of the framebuffer: top-left corner and size in pixels (exclusive: `x..x + width`).
/// Always non-empty and inside the framebuffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u16,
    pub y: u16,
    pub width: u16,
    pub height: u16,
}

/// The decoded desktop: `rgba` holds `width * height` pixels, row-major, 4 bytes each (R, G, B, A),
/// no padding between rows (stride = `width * 4`).
#[derive(Debug, Clone, Copy)]
pub struct Framebuffer<'a> {
    pub width: u16,
    pub height: u16,
    pub rgba: &'a [u8],
}

/// What happened as a result of a call; handle them in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Write these bytes to the transport, in order.
    Send(Vec<u8>),
    /// The session is active at this desktop size (the server's choice); size the canvas and paint
    /// the whole framebuffer. Emitted again after a server-driven reactivation (the size may change).
    Connected { width: u16, height: u16 },
    /// This region of the framebuffer changed.
    Paint(Rect),
    /// The server asks for the default arrow pointer (only with server pointers, off for now).
    PointerDefault,
    /// The server hides the pointer (only with server pointers, off for now).
    PointerHidden,
    /// A pointer image, RGBA premultiplied (only with server pointers, off for now).
    PointerBitmap { width: u16, height: u16, hotspot_x: u16, hotspot_y: u16, rgba: Vec<u8> },
    /// The server ended the session; the reason is a sentence for the user. Nothing follows.
    Terminated(String),
}

/// Mouse buttons, as DOM `MouseEvent.button` 0..=4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MouseButton {
    Left,
    Middle,
    Right,
    /// "Back"
    X1,
    /// "Forward"
    X2,
}

/// A user input event from the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// DOM `KeyboardEvent.code` ("KeyA", "ShiftLeft", "Enter", "Numpad1", ...); unknown codes are ignored.
    /// Repeated key-down events (auto-repeat) are sent as repeats.
    Key { code: String, pressed: bool },
    /// Pointer position in desktop pixels; clamped to the desktop.
    MouseMove { x: u16, y: u16 },
    MouseButton { button: MouseButton, pressed: bool },
    /// Wheel rotation in wheel units (120 = one notch), positive = up (vertical) or right (horizontal),
    /// clamped to -256..=255. DOM `WheelEvent.deltaY` is positive for *down*: negate it.
    Wheel { vertical: bool, amount: i16 },
    /// Press and release Ctrl+Alt+Delete (the browser cannot capture the real one).
    CtrlAltDel,
}

/// One RDP connection, from the first byte to the end of the session. See the crate docs.
pub struct RdpClient {
    connection: connection::Connection,
}

impl RdpClient {
    /// Returns the client and the first bytes to send (the X.224 Connection Request).
    pub fn new(params: ConnectParams) -> Result<(RdpClient, Vec<u8>), ClientError> {
        let (connection, first) = connection::Connection::new(params)?;
        Ok((RdpClient { connection }, first))
    }

    /// Feeds bytes received from the transport (any chunking); returns what happened.
    /// After an `Err` the connection is dead: further calls return [`ClientError::Closed`].
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Vec<Event>, ClientError> {
        self.connection.receive(bytes)
    }

    /// The transport closed from the workstation's side (TCP EOF; WebSocket close 1000 after all
    /// bytes were delivered). Returns `Terminated` for a live session, or the error that explains the
    /// close during sign-in (e.g. [`ClientError::CredentialsRejected`] when NLA hung up on our password).
    pub fn transport_closed(&mut self) -> Result<Vec<Event>, ClientError> {
        self.connection.transport_closed()
    }

    /// Keyboard/mouse input; ignored (`Ok(vec![])`) while the session is not active (connecting,
    /// during a server-driven reactivation, after the end).
    pub fn input(&mut self, input: Input) -> Result<Vec<Event>, ClientError> {
        self.connection.input(input)
    }

    /// Releases every pressed key and button (the page lost focus).
    pub fn release_all(&mut self) -> Result<Vec<Event>, ClientError> {
        self.connection.release_all()
    }

    /// Ends the connection politely: an MCS Disconnect Provider Ultimatum (the workstation keeps the
    /// session for a later reconnection) and TLS close_notify. Send the bytes, then close the transport.
    pub fn shutdown(&mut self) -> Result<Vec<Event>, ClientError> {
        self.connection.shutdown()
    }

    /// The decoded desktop, once the session is active.
    pub fn framebuffer(&self) -> Option<Framebuffer<'_>> {
        self.connection.framebuffer()
    }

    /// Fingerprint (64 lowercase hex) of the certificate the workstation presented, once TLS got that far.
    pub fn server_certificate_sha256(&self) -> Option<String> {
        self.connection.server_certificate_sha256()
    }

    /// Whether the session is active (input is being sent).
    pub fn is_active(&self) -> bool {
        self.connection.is_active()
    }
}

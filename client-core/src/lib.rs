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
//! clipboard: client.set_local_clipboard(content)?  (events as above); RemoteClipboard → page clipboard
//! on close:  client.transport_closed()  → Terminated, or the error explaining a close during sign-in
//! ```
//!
//! Modules: `connection` (the state machine), `tls` (rustls with certificate pinning), `framing`
//! (frames out of arbitrary chunks), `guard` (refuses updates IronRDP would panic on), `input` and
//! `keymap` (page events → RDP input), `layout` (which keys type a character), `softinput` (the
//! soft keyboard's hidden field as edits), `gesture` (touch as a mouse, zoom and pan), `clipboard` (the shared
//! clipboard), `redirection` (device redirection: `drive` for the browser's drive, `printer` for the universal
//! printer), `sound` (the workstation's audio as PCM), `config` (connector settings), `error`
//! (user-facing errors), `replay` (recorded graphics updates through the same decoder, for the bench).

mod clipboard;
pub use clipboard::ClipboardContent;
mod config;
mod connection;
mod display;
pub mod drive;
mod error;
mod framing;
pub mod gesture;
pub mod lift;
mod guard;
mod input;
mod keymap;
mod layout;
mod printer;
mod redirection;
pub mod replay;
pub mod softinput;
mod sound;
mod tls;

pub use display::COLOR_DEPTHS;
pub use error::ClientError;
pub use keymap::key_input;
pub use layout::{KeyboardLayout, LAYOUTS};
pub use redirection::{Devices, PRINTER_DRIVER, PRINTER_NAME};
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
    /// Colour depth in bits per pixel, one of [`COLOR_DEPTHS`]; the framebuffer is RGBA either way.
    pub color_depth: u8,
    /// Play the workstation's sound: announce the `rdpsnd` channel ([`Event::Audio`] follows).
    pub sounds: bool,
    /// Which graphics encodings are offered; everything by default (see [`Graphics`]).
    pub graphics: Graphics,
}

/// The graphics encodings offered to the workstation besides plain and compressed bitmaps (planar
/// at 32 bpp, interleaved below), which every server may send. The portal offers everything; the
/// bench turns them off one by one to record what a workstation sends in each encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Graphics {
    /// RemoteFX surface commands.
    pub remote_fx: bool,
    /// The graphics pipeline (EGFX), which servers prefer when offered.
    pub pipeline: bool,
}

impl Default for Graphics {
    fn default() -> Self {
        Graphics { remote_fx: true, pipeline: true }
    }
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
            .field("color_depth", &self.color_depth)
            .field("sounds", &self.sounds)
            .field("graphics", &self.graphics)
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
/// no padding between rows (stride = `width * 4`). Decoded pixels are opaque; before the first update
/// the framebuffer is transparent black.
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
    /// The workstation's pointer is the system's default arrow.
    PointerDefault,
    /// The workstation hides the pointer.
    PointerHidden,
    /// The workstation moved the pointer to this desktop position (e.g. a program warped it).
    PointerPosition { x: u16, y: u16 },
    /// The workstation's pointer shape: `width * height` RGBA pixels (straight, not premultiplied
    /// alpha; row-major, no padding) with its hot spot, what a CSS `cursor: url(...) x y` wants.
    PointerBitmap { width: u16, height: u16, hotspot_x: u16, hotspot_y: u16, rgba: Vec<u8> },
    /// The workstation copied this (text with LF line ends, HTML, an image as PNG; at least one of
    /// them): put it on the page's clipboard.
    RemoteClipboard(ClipboardContent),
    /// A clipboard transfer could not be done; a sentence for the user. The session goes on.
    ClipboardError(String),
    /// The workstation wrote this file (`/`-separated path in the drive, inside the download folder)
    /// and closed it: offer it as a download (read it from the drive's backend).
    DriveDownload { path: String, size: u64 },
    /// A print job of the universal printer: a whole PDF document.
    PrintJob { name: String, pdf: Vec<u8> },
    /// A print job could not be turned into a PDF; a sentence for the user. The session goes on.
    PrintError(String),
    /// The workstation's sound (only with [`ConnectParams::sounds`]): interleaved 16-bit PCM samples
    /// (`channels` per frame) exactly as sent, to be played after the previous ones.
    Audio { sample_rate: u32, channels: u16, samples: Vec<i16> },
    /// The workstation's volume for its sound, per channel (0 = silent, 0xFFFF = full).
    AudioVolume { left: u16, right: u16 },
    /// The server ended the session; the reason is a sentence for the user. Nothing follows.
    Terminated(String),
}

/// The answer to [`RdpClient::resize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resize {
    /// A monitor layout of this size (the request made even and kept within 200..=8192) was sent;
    /// send `events`. The workstation answers with a new `Connected` size when it has resized.
    Requested { width: u16, height: u16, events: Vec<Event> },
    /// The workstation cannot resize (no Display Control channel, not open yet, or the session is
    /// not active): keep the desktop's size and scale the picture to fit the window.
    ScaleToFit,
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
    /// Text to type (soft keyboard, IME, a key the DOM gives without a usable `code`): keys of the session's
    /// keyboard layout where it has them, else Unicode keyboard events. `\n` is Enter, `\t` Tab.
    Text(String),
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
        Self::with_devices(params, Devices::default())
    }

    /// Like [`RdpClient::new`], with redirected devices: the browser's drive and/or the universal
    /// printer (see [`Devices`]).
    pub fn with_devices(params: ConnectParams, devices: Devices) -> Result<(RdpClient, Vec<u8>), ClientError> {
        let (connection, first) = connection::Connection::new(params, devices)?;
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

    /// The page's clipboard holds `content` (e.g. read when the desktop gets focus, or pasted): the
    /// workstation is told, and gets it when something there pastes. Set before the session is
    /// active, it is announced when the clipboard channel starts. What the workstation itself sent
    /// last is not announced back (same text, same image pixels). Parts beyond the limits or an
    /// image that is not a PNG are left out with a `ClipboardError`.
    pub fn set_local_clipboard(&mut self, content: ClipboardContent) -> Result<Vec<Event>, ClientError> {
        self.connection.set_local_clipboard(content)
    }

    /// [`RdpClient::set_local_clipboard`] with just text.
    pub fn set_local_clipboard_text(&mut self, text: impl Into<String>) -> Result<Vec<Event>, ClientError> {
        self.set_local_clipboard(ClipboardContent::text(text))
    }

    /// A drive read or write the backend deferred ([`drive::Io::Deferred`]) has finished: the workstation
    /// gets its answer. Ids the client no longer waits for (answered, or from before a reconnection) are
    /// ignored.
    pub fn complete_drive_io(
        &mut self,
        id: drive::IoId,
        outcome: Result<drive::IoOutcome, drive::DriveError>,
    ) -> Result<Vec<Event>, ClientError> {
        self.connection.complete_drive_io(id, outcome)
    }

    /// Asks the workstation to change the desktop to `width` x `height` (the browser window changed)
    /// through the Display Control channel; see [`Resize`] for when the page must scale instead.
    pub fn resize(&mut self, width: u16, height: u16) -> Result<Resize, ClientError> {
        self.connection.resize(width, height)
    }

    /// Asks the workstation to end the session (MS-RDPBCGR Shutdown Request): a workstation that
    /// allows it logs the user off and closes; one that refuses answers "denied", upon which the
    /// client disconnects (the session stays, as with [`RdpClient::shutdown`]). A `Terminated`
    /// event follows either way. Ignored while the session is not active.
    pub fn log_off(&mut self) -> Result<Vec<Event>, ClientError> {
        self.connection.log_off()
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

    /// Keeps a copy of every fast-path frame (the graphics updates) from now on, for
    /// [`RdpClient::take_recording`]. Call it right after [`RdpClient::new`] so the recording starts
    /// with the session's first update, which a replay needs (RemoteFX sends its headers only once).
    pub fn record_updates(&mut self) {
        self.connection.record_updates();
    }

    /// The frames recorded since [`RdpClient::record_updates`], at the desktop's current size;
    /// recording stops. `None` when nothing was recorded or the session is not active.
    pub fn take_recording(&mut self) -> Option<replay::Recording> {
        self.connection.take_recording()
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

    /// Whether the workstation opened the sound channel and took one of our formats (only with
    /// [`ConnectParams::sounds`]); sound may follow as [`Event::Audio`].
    pub fn sound_format_agreed(&self) -> bool {
        self.connection.sound_format_agreed()
    }
}

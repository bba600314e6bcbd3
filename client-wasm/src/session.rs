//! One desktop session in the browser: the WebSocket to the relay, the RDP client core and the canvas.
//!
//! This is thin glue: every protocol decision is made by `homedesk_client_core::RdpClient`, which is
//! tested natively; here bytes move between it and the WebSocket, and framebuffer regions are painted.

use crate::api::{self, PortalSession, Ticket};
use crate::audio::Player;
use crate::clipboard;
use crate::client_settings::ClientSettings;
use crate::display;
use crate::files;
use homedesk_client_core::{ClientError, ClipboardContent, ConnectParams, Event, Input, RdpClient, Rect, Resize};
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CanvasRenderingContext2d, CloseEvent, HtmlCanvasElement, MessageEvent, WebSocket};
use yew::Callback;

/// What the page shows about the session.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    Connecting(&'static str),
    Connected,
    /// The connection broke after the desktop was shown: the page reconnects (the workstation keeps
    /// the session, so the user finds it as they left it).
    Dropped,
    /// The workstation did not take the new window size in time: the page reattaches to the session
    /// at the window's size (a new connection; the workstation keeps the session).
    Reattach,
    Ended { message: String, is_error: bool },
}

/// Clipboard news for the page (its clipboard panel).
#[derive(Clone, Debug, PartialEq)]
pub enum ClipboardNotice {
    /// The workstation copied this; `on_clipboard` says whether it is on the browser's clipboard.
    Remote { content: ClipboardContent, on_clipboard: bool },
    /// Sharing failed; a sentence for the user.
    Error(String),
}

pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// A live session; dropping it closes the connection.
pub struct Session {
    inner: Rc<RefCell<Inner>>,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
    _timeout: gloo::timers::callback::Timeout,
}

struct Inner {
    client: RdpClient,
    ws: WebSocket,
    canvas: HtmlCanvasElement,
    context: CanvasRenderingContext2d,
    on_status: Callback<Status>,
    on_clipboard: Callback<ClipboardNotice>,
    ticket: Ticket,
    portal: PortalSession,
    first_bytes: Option<Vec<u8>>,
    connected: bool,
    ended: bool,
    /// A requested desktop size the workstation has not shown yet, and the wait for it.
    pending_resize: Option<((u16, u16), gloo::timers::callback::Timeout)>,
    /// The workstation's sound, made at its first wave (only with the `sounds` client setting on).
    player: Option<Player>,
}

/// Largest WebSocket message sent (the relay's limit is 1 MiB, docs/contracts.md).
const MAX_MESSAGE: usize = 256 * 1024;


impl Session {
    pub fn start(
        portal: PortalSession,
        ticket: Ticket,
        credentials: Credentials,
        canvas: HtmlCanvasElement,
        settings: &ClientSettings,
        on_status: Callback<Status>,
        on_clipboard: Callback<ClipboardNotice>,
    ) -> Result<Session, String> {
        let workstation = &ticket.workstation;
        // A transparent or hidden menu bar leaves the whole window to the desktop.
        let menu_takes_space =
            settings.shows_menu(crate::client_settings::is_mobile()) && !settings.menu_transparent;
        let size = display::desktop_size(menu_takes_space);
        let params = ConnectParams {
            username: credentials.username,
            password: credentials.password,
            domain: workstation.domain.clone(),
            width: size.0,
            height: size.1,
            server_name: workstation.host.clone().unwrap_or_else(|| "workstation".to_owned()),
            pinned_sha256: workstation.certificate_sha256.clone(),
            client_name: "homedesk".to_owned(),
            keyboard_layout: crate::prefs::load().keyboard_layout,
            color_depth: settings.color_depth,
            sounds: settings.sounds,
            graphics: Default::default(),
        };
        let (client, first_bytes) = RdpClient::with_devices(params, files::devices(settings.file_transfer)).map_err(|e| e.to_string())?;
        let context = crate::paint::context(&canvas).ok_or("This browser cannot draw on a canvas.")?;
        let ws = WebSocket::new(&tunnel_url(&ticket.ticket)).map_err(|_| "The browser refused to open a WebSocket.")?;
        ws.set_binary_type(BinaryType::Arraybuffer);

        let inner = Rc::new(RefCell::new(Inner {
            client,
            ws: ws.clone(),
            canvas,
            context,
            on_status,
            on_clipboard,
            ticket,
            portal,
            first_bytes: Some(first_bytes),
            connected: false,
            ended: false,
            pending_resize: None,
            player: None,
        }));

        let weak = Rc::downgrade(&inner);
        let on_open = Closure::<dyn FnMut()>::new(with_inner(&weak, |inner| {
            inner.status(Status::Connecting("Signing in to your workstation…"));
            if let Some(bytes) = inner.first_bytes.take() {
                inner.send(&bytes);
            }
        }));
        let weak_message = weak.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let Some(inner) = weak_message.upgrade() else { return };
            let Ok(buffer) = event.data().dyn_into::<js_sys::ArrayBuffer>() else { return };
            let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
            inner.borrow_mut().on_bytes(&bytes);
        });
        let weak_close = weak.clone();
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
            if let Some(inner) = weak_close.upgrade() {
                inner.borrow_mut().on_close(event.code(), &event.reason());
            }
        });
        // The drive's reads and writes finish later (browser storage is asynchronous): their answers
        // go to this session's client; a newer session takes the sink over.
        let weak_drive = weak.clone();
        files::set_drive_sink(Some(Rc::new(move |id, outcome| {
            if let Some(inner) = weak_drive.upgrade() {
                let mut inner = inner.borrow_mut();
                let result = inner.client.complete_drive_io(id, outcome);
                inner.handle(result);
            }
        })));
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));

        let weak_timeout = weak.clone();
        let timeout_ms = settings.connection_timeout_secs.saturating_mul(1000);
        let timeout = gloo::timers::callback::Timeout::new(timeout_ms, move || {
            if let Some(inner) = weak_timeout.upgrade() {
                let mut inner = inner.borrow_mut();
                if !inner.connected {
                    let name = inner.ticket.workstation.name.clone();
                    inner.end(format!("The workstation {name} did not show a desktop in time. Try again later."), true);
                }
            }
        });

        inner.borrow().status(Status::Connecting("Connecting to your workstation…"));
        Ok(Session { inner, _on_open: on_open, _on_message: on_message, _on_close: on_close, _timeout: timeout })
    }

    pub fn input(&self, input: Input) {
        let mut inner = self.inner.borrow_mut();
        let result = inner.client.input(input);
        inner.handle(result);
    }

    /// The browser's clipboard holds `content` (read on focus, pasted, or sent from the clipboard panel).
    pub fn set_local_clipboard(&self, content: ClipboardContent) {
        let mut inner = self.inner.borrow_mut();
        let result = inner.client.set_local_clipboard(content);
        inner.handle(result);
    }

    /// The page lost focus: nothing may stay pressed on the workstation.
    pub fn release_all(&self) {
        let mut inner = self.inner.borrow_mut();
        let result = inner.client.release_all();
        inner.handle(result);
    }

    /// The browser window changed: ask the workstation for `size`, or scale the picture when it
    /// cannot resize. A workstation that takes the request but never shows the new size is reattached
    /// at it ([`Status::Reattach`]).
    pub fn resize(&self, size: (u16, u16)) {
        let weak = Rc::downgrade(&self.inner);
        let mut inner = self.inner.borrow_mut();
        if !inner.connected || inner.ended {
            return;
        }
        if (inner.canvas.width(), inner.canvas.height()) == (u32::from(size.0), u32::from(size.1)) {
            inner.pending_resize = None;
            display::fit_canvas(&inner.canvas);
            return;
        }
        match inner.client.resize(size.0, size.1) {
            Ok(Resize::Requested { width, height, events }) => {
                for event in events {
                    inner.on_event(event);
                }
                let wait = gloo::timers::callback::Timeout::new(display::RESIZE_ANSWER_MS, move || {
                    let Some(inner) = weak.upgrade() else { return };
                    let mut inner = inner.borrow_mut();
                    if inner.pending_resize.take().is_some() && !inner.ended {
                        inner.ended = true;
                        inner.status(Status::Reattach);
                    }
                });
                inner.pending_resize = Some(((width, height), wait));
            }
            Ok(Resize::ScaleToFit) => display::fit_canvas(&inner.canvas),
            Err(error) => inner.handle(Err(error)),
        }
    }

    /// Asks the workstation to log the user off; it ends the connection with its answer.
    pub fn log_off(&self) {
        let mut inner = self.inner.borrow_mut();
        let result = inner.client.log_off();
        inner.handle(result);
    }

    /// Ends the session on the user's request (the workstation session stays for a later reattach).
    pub fn disconnect(&self) {
        let mut inner = self.inner.borrow_mut();
        let result = inner.client.shutdown();
        inner.handle(result);
        inner.end("You have been disconnected.".to_owned(), false);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let Ok(inner) = self.inner.try_borrow() else { return };
        inner.ws.set_onopen(None);
        inner.ws.set_onmessage(None);
        inner.ws.set_onclose(None);
        let _ = inner.ws.close();
    }
}

fn with_inner(weak: &Weak<RefCell<Inner>>, f: impl Fn(&mut Inner) + 'static) -> impl FnMut() + 'static {
    let weak = weak.clone();
    move || {
        if let Some(inner) = weak.upgrade() {
            f(&mut inner.borrow_mut());
        }
    }
}

fn tunnel_url(ticket: &str) -> String {
    let location = gloo::utils::window().location();
    let scheme = if location.protocol().unwrap_or_default() == "http:" { "ws" } else { "wss" };
    let host = location.host().unwrap_or_default();
    format!("{scheme}://{host}/api/tunnel?ticket={ticket}")
}

impl Inner {
    /// Reported from a microtask: the page may drop this session in reaction, which must not
    /// happen while a WebSocket callback still holds it.
    fn status(&self, status: Status) {
        let on_status = self.on_status.clone();
        wasm_bindgen_futures::spawn_local(async move { on_status.emit(status) });
    }

    fn send(&self, bytes: &[u8]) {
        // The relay takes WebSocket messages up to 1 MiB; a large paste is one big burst of TLS records.
        // A failed send means the socket is closing; its close event reports why.
        for chunk in bytes.chunks(MAX_MESSAGE) {
            let _ = self.ws.send_with_u8_array(chunk);
        }
    }

    /// Puts the workstation's copy on the browser's clipboard (needs focus) and tells the page.
    fn remote_clipboard(&self, content: ClipboardContent) {
        let on_clipboard = self.on_clipboard.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let written = clipboard::write(&content).await;
            on_clipboard.emit(ClipboardNotice::Remote { content, on_clipboard: written });
        });
    }

    fn on_bytes(&mut self, bytes: &[u8]) {
        if self.ended {
            return;
        }
        let result = self.client.receive(bytes);
        self.handle(result);
    }

    fn handle(&mut self, result: Result<Vec<Event>, ClientError>) {
        match result {
            Ok(events) => {
                for event in events {
                    self.on_event(event);
                }
            }
            Err(error) => {
                let message = self.describe(&error);
                self.end(message, true);
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Send(bytes) => self.send(&bytes),
            Event::Connected { width, height } => {
                self.connected = true;
                self.canvas.set_width(u32::from(width));
                self.canvas.set_height(u32::from(height));
                if self.pending_resize.as_ref().is_some_and(|(size, _)| *size == (width, height)) {
                    self.pending_resize = None;
                }
                display::fit_canvas(&self.canvas);
                self.paint_all();
                let _ = self.canvas.focus();
                self.status(Status::Connected);
                self.pin_certificate_on_first_use();
            }
            Event::Paint(rect) => self.paint(rect),
            Event::PointerDefault => display::set_cursor(&self.canvas, "default"),
            Event::PointerHidden => display::set_cursor(&self.canvas, "none"),
            Event::PointerBitmap { width, height, hotspot_x, hotspot_y, rgba } => {
                if let Some(css) = display::cursor_css(width, height, hotspot_x, hotspot_y, &rgba) {
                    display::set_cursor(&self.canvas, &css);
                }
            }
            Event::Terminated(reason) => self.end(reason, false),
            Event::RemoteClipboard(content) => self.remote_clipboard(content),
            Event::ClipboardError(message) => {
                let on_clipboard = self.on_clipboard.clone();
                wasm_bindgen_futures::spawn_local(async move { on_clipboard.emit(ClipboardNotice::Error(message)) });
            }
            // From a microtask, like status changes: the page may re-render.
            event @ (Event::DriveDownload { .. } | Event::PrintJob { .. } | Event::PrintError(_)) => {
                wasm_bindgen_futures::spawn_local(async move { files::on_event(event) });
            }
            Event::Audio { sample_rate, channels, samples } => {
                if let Some(player) = self.player() {
                    player.play(sample_rate, channels, &samples);
                }
            }
            Event::AudioVolume { left, right } => {
                if let Some(player) = self.player() {
                    player.set_volume(left, right);
                }
            }
            _ => {}
        }
    }

    /// The session's sound output, made on first use (the context exists once a click unlocked it).
    fn player(&mut self) -> Option<&mut Player> {
        if self.player.is_none() {
            self.player = Player::new();
        }
        self.player.as_mut()
    }

    fn paint_all(&self) {
        if let Some(frame) = self.client.framebuffer() {
            self.paint(Rect { x: 0, y: 0, width: frame.width, height: frame.height });
        }
    }

    fn paint(&self, rect: Rect) {
        if let Some(frame) = self.client.framebuffer() {
            crate::paint::region(&self.context, frame, rect);
        }
    }

    /// Trust on first use: the relay records the certificate we saw once the session works.
    fn pin_certificate_on_first_use(&self) {
        if self.ticket.workstation.certificate_sha256.is_some() {
            return;
        }
        let Some(sha256) = self.client.server_certificate_sha256() else { return };
        let portal = self.portal.clone();
        let id = self.ticket.workstation.id;
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(error) = api::pin_certificate(&portal, id, &sha256).await {
                gloo::console::warn!(format!("certificate not recorded: {error}"));
            }
        });
    }

    fn describe(&self, error: &ClientError) -> String {
        let name = &self.ticket.workstation.name;
        match error {
            ClientError::CertificateChanged { .. } => format!(
                "The security certificate of workstation {name} has changed, so the connection was refused \
                 to protect your password. Ask your administrator to check the workstation and re-pin it."
            ),
            other => format!("The connection to workstation {name} failed: {other}"),
        }
    }

    fn on_close(&mut self, code: u16, reason: &str) {
        if self.ended {
            return;
        }
        if code == 1000 {
            // The workstation hung up: the core knows whether that means a refused password.
            let result = self.client.transport_closed();
            self.handle(result);
            if self.ended {
                return;
            }
        }
        if self.connected && matches!(code, 1001 | 1006 | 1011) {
            self.ended = true;
            self.status(Status::Dropped);
            return;
        }
        let name = self.ticket.workstation.name.clone();
        let message = match code {
            4000..=4999 | 1009 if !reason.is_empty() => reason.to_owned(),
            1000 if self.connected => "The session has ended.".to_owned(),
            1000 => format!("Workstation {name} closed the connection during sign-in."),
            _ => "The connection to the portal was lost.".to_owned(),
        };
        let is_error = !(code == 1000 && self.connected);
        self.end(message, is_error);
    }

    fn end(&mut self, message: String, is_error: bool) {
        if self.ended {
            return;
        }
        self.ended = true;
        let _ = self.ws.close();
        self.status(Status::Ended { message, is_error });
    }
}

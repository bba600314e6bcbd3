//! The shared clipboard (MS-RDPECLIP, the `cliprdr` static channel) without I/O.
//!
//! IronRDP's `CliprdrClient` runs the channel's protocol and reports to a backend through callbacks
//! that fire while it processes a PDU, where nothing can be sent. [`QueueBackend`] only records
//! those callbacks; [`Clipboard`] drains the record after every call into the session and answers
//! with the clipboard's own methods (announce our text, fetch the workstation's text, serve a
//! request), so everything stays a synchronous function of the input and the caller gets plain
//! [`Event`]s.
//!
//! What a clipboard holds is a [`ClipboardContent`]: plain text, HTML and an image, the forms a
//! browser's clipboard has (`text/plain`, `text/html`, `image/png`). On the wire:
//! - text is `CF_UNICODETEXT` (UTF-16LE, NUL-terminated, CRLF line ends; `CF_TEXT` when that is all
//!   the workstation has); the page's text uses LF, so line ends are converted both ways;
//! - HTML is the registered format "HTML Format" (`CF_HTML`: UTF-8 with a header of offsets);
//! - an image is `CF_DIB` (what every Windows application and xrdp's `image/bmp` understand) and the
//!   registered format "PNG" (lossless with alpha, what newer Windows applications prefer); from the
//!   workstation "PNG" is taken first, then `CF_DIBV5`, then `CF_DIB`.
//!
//! The conversions (PNG ↔ DIB, HTML ↔ `CF_HTML`) are IronRDP's `ironrdp-cliprdr-format`.
//! Delayed rendering as the protocol wants it: setting the local content only announces its
//! formats, their bytes are sent when the workstation pastes. The workstation's copies are
//! fetched at once, one format after the other (one request in flight: xrdp serves them one at a
//! time), and reach the page as one [`Event::RemoteClipboard`].

use crate::error::{self, ClientError};
use crate::Event;
use core::fmt::Display;
use ironrdp_cliprdr::backend::CliprdrBackend;
use ironrdp_cliprdr::pdu::{
    ClipboardFormat, ClipboardFormatId, ClipboardFormatName, ClipboardGeneralCapabilityFlags, FileContentsRequest,
    FileContentsResponse, FormatDataRequest, FormatDataResponse, LockDataId, OwnedFormatDataResponse,
};
use ironrdp_cliprdr_format::{bitmap, html};
use ironrdp_cliprdr::{CliprdrClient, CliprdrSvcMessages};
use ironrdp_session::ActiveStage;
use std::collections::VecDeque;

/// Largest text accepted from the workstation or the page, in UTF-16 code units (16 MiB of wire
/// data): a bound on what a peer can make us allocate through one paste.
pub(crate) const MAX_TEXT_UNITS: usize = 8 * 1024 * 1024;

/// Largest HTML accepted either way, in bytes.
pub(crate) const MAX_HTML_BYTES: usize = 16 * 1024 * 1024;
/// Largest PNG accepted from the page (the DIB made of it is bounded by the conversion, 64 MB).
pub(crate) const MAX_PNG_BYTES: usize = 32 * 1024 * 1024;

/// The ids we give our registered formats in our format lists (any id from 0xC000 on; the
/// workstation maps them by name).
const LOCAL_HTML_ID: ClipboardFormatId = ClipboardFormatId(0xC0E0);
const LOCAL_PNG_ID: ClipboardFormatId = ClipboardFormatId(0xC0E1);
/// The registered name Windows applications use for PNG images.
const PNG_NAME: &str = "PNG";

/// What a clipboard holds, in the forms a browser's clipboard shares with the workstation's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClipboardContent {
    /// Plain text, LF line ends.
    pub text: Option<String>,
    /// An HTML fragment (the browser's `text/html`).
    pub html: Option<String>,
    /// An image as a PNG file (the browser's `image/png`).
    pub png: Option<Vec<u8>>,
}

impl ClipboardContent {
    /// Just text.
    pub fn text(text: impl Into<String>) -> ClipboardContent {
        ClipboardContent { text: Some(text.into()), ..ClipboardContent::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_none() && self.html.is_none() && self.png.is_none()
    }
}

/// The channel processor the connector announces (`cliprdr`).
pub(crate) fn channel() -> CliprdrClient {
    CliprdrClient::new(Box::new(QueueBackend::default()))
}

/// What the channel asked for while it processed a PDU, in order.
#[derive(Debug, PartialEq)]
enum Request {
    /// Monitor Ready: the channel wants our format list to finish its initialization.
    AnnounceLocal,
    /// The workstation's clipboard changed; these formats are available.
    RemoteFormats(Vec<ClipboardFormat>),
    /// The workstation pastes our clipboard in this format.
    LocalData(ClipboardFormatId),
    /// The answer to our oldest paste request (`None`: the workstation could not provide it).
    RemoteData(Option<Vec<u8>>),
}

impl Request {
    fn name(&self) -> &'static str {
        match self {
            Request::AnnounceLocal => "announce local formats",
            Request::RemoteFormats(_) => "remote formats",
            Request::LocalData(_) => "local data requested",
            Request::RemoteData(_) => "remote data",
        }
    }
}

/// The backend given to `CliprdrClient`: records callbacks for [`Clipboard::drain`].
#[derive(Debug, Default)]
struct QueueBackend {
    requests: VecDeque<Request>,
}

ironrdp_core::impl_as_any!(QueueBackend);

impl CliprdrBackend for QueueBackend {
    fn temporary_directory(&self) -> &str {
        // No files are transferred; the PDU still wants a path.
        ".cdr"
    }

    fn client_capabilities(&self) -> ClipboardGeneralCapabilityFlags {
        ClipboardGeneralCapabilityFlags::USE_LONG_FORMAT_NAMES
    }

    fn on_ready(&mut self) {}

    fn on_request_format_list(&mut self) {
        self.requests.push_back(Request::AnnounceLocal);
    }

    fn on_process_negotiated_capabilities(&mut self, _capabilities: ClipboardGeneralCapabilityFlags) {}

    fn on_remote_copy(&mut self, available_formats: &[ClipboardFormat]) {
        self.requests.push_back(Request::RemoteFormats(available_formats.to_vec()));
    }

    fn on_format_data_request(&mut self, request: FormatDataRequest) {
        self.requests.push_back(Request::LocalData(request.format));
    }

    fn on_format_data_response(&mut self, response: FormatDataResponse<'_>) {
        let data = (!response.is_error()).then(|| response.data().to_vec());
        self.requests.push_back(Request::RemoteData(data));
    }

    fn on_file_contents_request(&mut self, _request: FileContentsRequest) {}

    fn on_file_contents_response(&mut self, _response: FileContentsResponse<'_>) {}

    fn on_lock(&mut self, _data_id: LockDataId) {}

    fn on_unlock(&mut self, _data_id: LockDataId) {}

    /// No clocks in this crate: the lock timers (file transfers only, which are not offered) stand still.
    fn now_ms(&self) -> u64 {
        0
    }
}

/// The page's clipboard as announced to the workstation, with its image already as a DIB.
#[derive(Debug, Default, PartialEq)]
struct LocalContent {
    content: ClipboardContent,
    /// `CF_DIB` of `content.png`, made when the page set it (a PNG that does not convert is dropped).
    dib: Option<Vec<u8>>,
}

/// A format of the workstation's clipboard that we fetch, and how its bytes become page content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    UnicodeText,
    AnsiText,
    Html(ClipboardFormatId),
    Png(ClipboardFormatId),
    DibV5,
    Dib,
}

impl Wanted {
    fn id(self) -> ClipboardFormatId {
        match self {
            Wanted::UnicodeText => ClipboardFormatId::CF_UNICODETEXT,
            Wanted::AnsiText => ClipboardFormatId::CF_TEXT,
            Wanted::Html(id) | Wanted::Png(id) => id,
            Wanted::DibV5 => ClipboardFormatId::CF_DIBV5,
            Wanted::Dib => ClipboardFormatId::CF_DIB,
        }
    }

    fn is_image(self) -> bool {
        matches!(self, Wanted::Png(_) | Wanted::DibV5 | Wanted::Dib)
    }

    /// What to fetch of an announced format list: the best text, HTML and image formats, then the
    /// other image formats in order of preference, for when the first fails (xrdp announces
    /// `CF_DIBV5` but serves only `CF_DIB`).
    fn choose(formats: &[ClipboardFormat]) -> (Vec<Wanted>, VecDeque<Wanted>) {
        let has = |id: ClipboardFormatId| formats.iter().any(|f| f.id() == id);
        let named = |name: &str| {
            formats
                .iter()
                .find(|f| f.name().is_some_and(|n| n.value().eq_ignore_ascii_case(name)))
                .map(ClipboardFormat::id)
        };
        let text = [Wanted::UnicodeText, Wanted::AnsiText].into_iter().find(|w| has(w.id()));
        let html = named(ClipboardFormatName::HTML.value()).map(Wanted::Html);
        let mut images: VecDeque<Wanted> = [named(PNG_NAME).map(Wanted::Png)]
            .into_iter()
            .flatten()
            .chain([Wanted::DibV5, Wanted::Dib].into_iter().filter(|w| has(w.id())))
            .collect();
        let first = [text, html, images.pop_front()].into_iter().flatten().collect();
        (first, images)
    }
}

/// The workstation's current copy, fetched one format at a time.
#[derive(Debug, Default)]
struct RemoteFetch {
    /// Which copy this is: answers to requests of an older copy are dropped.
    generation: u64,
    /// Formats still to request, in order.
    queue: VecDeque<Wanted>,
    /// Image formats to try when the one asked for fails.
    image_fallbacks: VecDeque<Wanted>,
    content: ClipboardContent,
}

/// Our side of the shared clipboard, kept across reactivations.
#[derive(Debug, Default)]
pub(crate) struct Clipboard {
    /// The page's clipboard, announced to the workstation.
    local: Option<LocalContent>,
    /// What the workstation sent last (its image as a DIB made from the PNG given to the page): the
    /// page writing it back is no change.
    last_remote: Option<(Option<String>, Option<Vec<u8>>)>,
    /// The workstation's copy being fetched.
    fetch: RemoteFetch,
    /// Our paste requests not answered yet, oldest first (answers come in order), with the
    /// generation of the copy they belong to.
    pending_pastes: VecDeque<(u64, Wanted)>,
}

const TOO_LARGE: &str =
    "The clipboard text is too large to be shared with the workstation (at most 8 million characters).";

fn warn(what: &str, error: impl Display) {
    tracing::warn!(%error, "{what}");
}

/// The cliprdr processor of the session, if the server opened the channel.
fn cliprdr(stage: &mut ActiveStage) -> Option<&mut CliprdrClient> {
    stage.get_svc_processor_mut::<CliprdrClient>()
}

fn encode(stage: &ActiveStage, messages: CliprdrSvcMessages<ironrdp_cliprdr::Client>) -> Result<Vec<u8>, ClientError> {
    stage
        .process_svc_processor_messages(messages)
        .map_err(|e| error::from_session(&e))
}

type Messages = CliprdrSvcMessages<ironrdp_cliprdr::Client>;

impl Clipboard {
    /// The page's clipboard now holds `content`. Returns the frame to send (a format list) when
    /// the channel is up and the content is news to the workstation; before that, it is announced
    /// when the channel asks for our formats.
    pub(crate) fn set_local(
        &mut self,
        stage: Option<&mut ActiveStage>,
        content: ClipboardContent,
        events: &mut Vec<Event>,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        let Some(stage) = stage else {
            self.accept_local(content, events);
            return Ok(None);
        };
        let Some(cliprdr) = cliprdr(stage) else {
            self.accept_local(content, events);
            return Ok(None);
        };
        match self.offer_local(cliprdr, content, events) {
            Some(messages) => encode(stage, messages).map(Some),
            None => Ok(None),
        }
    }

    /// Takes the page's content; the format list to send when it is news and the channel is ready.
    fn offer_local(
        &mut self,
        cliprdr: &mut CliprdrClient,
        content: ClipboardContent,
        events: &mut Vec<Event>,
    ) -> Option<Messages> {
        if !self.accept_local(content, events) || !cliprdr.is_ready() {
            return None;
        }
        cliprdr
            .initiate_copy(&self.local_formats())
            .map_err(|e| warn("cannot announce the clipboard", e))
            .ok()
    }

    /// Stores the page's content; whether the workstation must be told (it is new, and not what
    /// the workstation itself sent last).
    fn accept_local(&mut self, content: ClipboardContent, events: &mut Vec<Event>) -> bool {
        let Some(local) = checked_local(content, events) else { return false };
        let unchanged = self.local.as_ref() == Some(&local);
        let from_remote = self.last_remote.as_ref().is_some_and(|(text, dib)| {
            *text == local.content.text && (dib.is_none() || *dib == local.dib)
        });
        self.local = Some(local);
        if unchanged || from_remote {
            return false;
        }
        self.last_remote = None;
        true
    }

    fn local_formats(&self) -> Vec<ClipboardFormat> {
        let Some(local) = &self.local else { return Vec::new() };
        let mut formats = Vec::new();
        if local.content.text.is_some() {
            formats.push(ClipboardFormat::new(ClipboardFormatId::CF_UNICODETEXT));
        }
        if local.content.html.is_some() {
            formats.push(ClipboardFormat::new(LOCAL_HTML_ID).with_name(ClipboardFormatName::HTML));
        }
        if local.dib.is_some() {
            formats.push(ClipboardFormat::new(ClipboardFormatId::CF_DIB));
            formats.push(ClipboardFormat::new(LOCAL_PNG_ID).with_name(ClipboardFormatName::new_static(PNG_NAME)));
        }
        formats
    }

    /// Acts on what the channel recorded during the last processing; returns frames to send and
    /// pushes events for the page. A clipboard step that fails is logged and skipped: the desktop
    /// matters more than one paste.
    pub(crate) fn drain(
        &mut self,
        stage: &mut ActiveStage,
        events: &mut Vec<Event>,
    ) -> Result<Vec<Vec<u8>>, ClientError> {
        let Some(cliprdr) = cliprdr(stage) else { return Ok(Vec::new()) };
        let messages = self.answer_queued(cliprdr, events);
        messages.into_iter().map(|messages| encode(stage, messages)).collect()
    }

    /// The messages answering everything the channel recorded, in order.
    fn answer_queued(&mut self, cliprdr: &mut CliprdrClient, events: &mut Vec<Event>) -> Vec<Messages> {
        let mut out = Vec::new();
        while let Some(request) =
            cliprdr.downcast_backend_mut::<QueueBackend>().and_then(|backend| backend.requests.pop_front())
        {
            tracing::debug!(request = request.name(), "clipboard");
            let messages = match request {
                Request::AnnounceLocal => cliprdr.initiate_copy(&self.local_formats()).map(Some),
                Request::RemoteFormats(formats) => self.fetch_remote(cliprdr, &formats),
                Request::LocalData(format) => cliprdr.submit_format_data(self.local_data(format)).map(Some),
                Request::RemoteData(data) => self.remote_data(cliprdr, data, events),
            };
            match messages {
                Ok(Some(messages)) => out.push(messages),
                Ok(None) => {}
                Err(e) => warn("clipboard step failed", e),
            }
        }
        out
    }

    /// The workstation copied something: fetch it right away, so the page can put it on the
    /// browser's clipboard while the user still has the desktop in focus.
    fn fetch_remote(
        &mut self,
        cliprdr: &mut CliprdrClient,
        formats: &[ClipboardFormat],
    ) -> Result<Option<Messages>, ironrdp_pdu::PduError> {
        let (queue, image_fallbacks) = Wanted::choose(formats);
        self.fetch = RemoteFetch {
            generation: self.fetch.generation.wrapping_add(1),
            queue: queue.into(),
            image_fallbacks,
            content: ClipboardContent::default(),
        };
        self.request_next(cliprdr)
    }

    /// Asks for the next format of the current copy, unless a request is in flight.
    fn request_next(&mut self, cliprdr: &mut CliprdrClient) -> Result<Option<Messages>, ironrdp_pdu::PduError> {
        if !self.pending_pastes.is_empty() {
            return Ok(None);
        }
        let Some(wanted) = self.fetch.queue.pop_front() else { return Ok(None) };
        self.pending_pastes.push_back((self.fetch.generation, wanted));
        cliprdr.initiate_paste(wanted.id()).map(Some)
    }

    fn local_data(&self, format: ClipboardFormatId) -> OwnedFormatDataResponse {
        let Some(local) = &self.local else { return OwnedFormatDataResponse::new_error() };
        let content = &local.content;
        match format {
            ClipboardFormatId::CF_UNICODETEXT => content.text.as_deref().map(encode_unicode_text),
            ClipboardFormatId::CF_TEXT => content
                .text
                .as_deref()
                .map(|text| ansi_bytes(&to_crlf(text).replace(|c: char| !c.is_ascii(), "?"))),
            LOCAL_HTML_ID => content.html.as_deref().map(|fragment| html::plain_html_to_cf_html(fragment).into_bytes()),
            ClipboardFormatId::CF_DIB => local.dib.clone(),
            LOCAL_PNG_ID => local.dib.as_ref().and(content.png.clone()),
            _ => None,
        }
        .map_or_else(OwnedFormatDataResponse::new_error, OwnedFormatDataResponse::new_data)
    }

    /// The answer to our oldest request: kept if it belongs to the current copy, then the next
    /// format is asked for; the whole copy goes to the page once every format was answered.
    fn remote_data(
        &mut self,
        cliprdr: &mut CliprdrClient,
        data: Option<Vec<u8>>,
        events: &mut Vec<Event>,
    ) -> Result<Option<Messages>, ironrdp_pdu::PduError> {
        let Some((generation, wanted)) = self.pending_pastes.pop_front() else {
            tracing::debug!("clipboard data nobody asked for; ignored");
            return Ok(None);
        };
        if generation == self.fetch.generation {
            match data {
                Some(data) => self.keep_remote(wanted, &data, events),
                None => tracing::debug!(?wanted, "the workstation could not provide its clipboard"),
            }
            if wanted.is_image() && self.fetch.content.png.is_none() {
                if let Some(next) = self.fetch.image_fallbacks.pop_front() {
                    self.fetch.queue.push_front(next);
                }
            }
            if self.fetch.queue.is_empty() {
                self.deliver_remote(events);
            }
        }
        self.request_next(cliprdr)
    }

    /// One fetched format into the copy's content; what does not convert is logged and left out.
    fn keep_remote(&mut self, wanted: Wanted, data: &[u8], events: &mut Vec<Event>) {
        let content = &mut self.fetch.content;
        match wanted {
            Wanted::UnicodeText | Wanted::AnsiText => {
                let text = if wanted == Wanted::UnicodeText { decode_unicode_text(data) } else { decode_ansi_text(data) };
                match text {
                    Some(text) => content.text = Some(text),
                    None => events.push(Event::ClipboardError(TOO_LARGE.to_owned())),
                }
            }
            Wanted::Html(_) => match decode_cf_html(data) {
                Ok(fragment) => content.html = Some(fragment),
                Err(e) => warn("the workstation's HTML is not CF_HTML", e),
            },
            Wanted::Png(_) if data.len() <= MAX_PNG_BYTES && data.starts_with(PNG_SIGNATURE) => {
                content.png = Some(data.to_vec())
            }
            Wanted::Png(_) => warn("the workstation's PNG is left out", "not a PNG file, or larger than 32 MB"),
            Wanted::DibV5 | Wanted::Dib => {
                let png = if wanted == Wanted::Dib { bitmap::dib_to_png(data) } else { bitmap::dibv5_to_png(data) };
                match png {
                    Ok(png) => content.png = Some(png),
                    Err(e) => warn("the workstation's bitmap does not convert", e),
                }
            }
        }
    }

    fn deliver_remote(&mut self, events: &mut Vec<Event>) {
        let content = core::mem::take(&mut self.fetch.content);
        if content.is_empty() {
            return;
        }
        let dib = content.png.as_deref().and_then(|png| bitmap::png_to_cf_dib(png).ok());
        self.last_remote = Some((content.text.clone(), dib));
        events.push(Event::RemoteClipboard(content));
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The page's content within the limits, its image converted to a DIB; `None` (with a sentence for
/// the user) when nothing of it can be shared.
fn checked_local(mut content: ClipboardContent, events: &mut Vec<Event>) -> Option<LocalContent> {
    if content.text.as_ref().is_some_and(|text| text.encode_utf16().count() > MAX_TEXT_UNITS) {
        events.push(Event::ClipboardError(TOO_LARGE.to_owned()));
        content.text = None;
    }
    if content.html.as_ref().is_some_and(|html| html.len() > MAX_HTML_BYTES) {
        events.push(Event::ClipboardError(
            "The copied HTML is too large to be shared with the workstation (at most 16 MB); its text is shared."
                .to_owned(),
        ));
        content.html = None;
    }
    let dib = match content.png.as_deref() {
        Some(png) if png.len() > MAX_PNG_BYTES => Err("the image is larger than 32 MB".to_owned()),
        Some(png) => bitmap::png_to_cf_dib(png).map(Some).map_err(|e| e.to_string()),
        None => Ok(None),
    };
    let dib = dib.unwrap_or_else(|reason| {
        events.push(Event::ClipboardError(format!("The copied image cannot be shared with the workstation: {reason}.")));
        content.png = None;
        None
    });
    (!content.is_empty()).then_some(LocalContent { content, dib })
}

/// `CF_HTML` → the HTML fragment, bounded.
fn decode_cf_html(data: &[u8]) -> Result<String, String> {
    if data.len() > MAX_HTML_BYTES + 4096 {
        return Err("larger than 16 MB".to_owned());
    }
    html::cf_html_to_plain_html(data).map(str::to_owned).map_err(|e| e.to_string())
}

/// Text as `CF_TEXT`: its bytes and one terminating NUL.
fn ansi_bytes(text: &str) -> Vec<u8> {
    text.bytes().chain([0]).collect()
}

/// LF or CRLF → CRLF (what Windows applications expect in `CF_UNICODETEXT`).
fn to_crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    let mut previous = '\0';
    for c in text.chars() {
        if c == '\n' && previous != '\r' {
            out.push('\r');
        }
        out.push(c);
        previous = c;
    }
    out
}

/// Page text → `CF_UNICODETEXT` bytes: UTF-16LE, CRLF, one terminating NUL.
pub(crate) fn encode_unicode_text(text: &str) -> Vec<u8> {
    to_crlf(text)
        .encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// `CF_UNICODETEXT` bytes → page text: up to the first NUL, CRLF → LF, unpaired surrogates
/// replaced. `None` when larger than [`MAX_TEXT_UNITS`].
pub(crate) fn decode_unicode_text(data: &[u8]) -> Option<String> {
    let units: Vec<u16> = data
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .take_while(|&unit| unit != 0)
        .collect();
    if units.len() > MAX_TEXT_UNITS {
        return None;
    }
    Some(String::from_utf16_lossy(&units).replace("\r\n", "\n"))
}

/// `CF_TEXT` (the server's ANSI code page; only ASCII is certain) → page text.
fn decode_ansi_text(data: &[u8]) -> Option<String> {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    if end > MAX_TEXT_UNITS {
        return None;
    }
    Some(String::from_utf8_lossy(&data[..end]).replace("\r\n", "\n"))
}

#[cfg(test)]
#[path = "clipboard_tests.rs"]
mod tests;

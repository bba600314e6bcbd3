//! The shared clipboard (MS-RDPECLIP, the `cliprdr` static channel) without I/O.
//!
//! IronRDP's `CliprdrClient` runs the channel's protocol and reports to a backend through callbacks
//! that fire while it processes a PDU, where nothing can be sent. [`QueueBackend`] only records
//! those callbacks; [`Clipboard`] drains the record after every call into the session and answers
//! with the clipboard's own methods (announce our text, fetch the workstation's text, serve a
//! request), so everything stays a synchronous function of the input and the caller gets plain
//! [`Event`]s.
//!
//! Text travels as `CF_UNICODETEXT` (UTF-16LE, NUL-terminated, CRLF line ends); the page's text uses
//! LF, so line ends are converted both ways. Delayed rendering as the protocol wants it: setting
//! the local text only announces it, its bytes are sent when the workstation pastes.

use crate::error::{self, ClientError};
use crate::Event;
use core::fmt::Display;
use ironrdp_cliprdr::backend::CliprdrBackend;
use ironrdp_cliprdr::pdu::{
    ClipboardFormat, ClipboardFormatId, ClipboardGeneralCapabilityFlags, FileContentsRequest, FileContentsResponse,
    FormatDataRequest, FormatDataResponse, LockDataId, OwnedFormatDataResponse,
};
use ironrdp_cliprdr::{CliprdrClient, CliprdrSvcMessages};
use ironrdp_session::ActiveStage;
use std::collections::VecDeque;

/// Largest text accepted from the workstation or the page, in UTF-16 code units (16 MiB of wire
/// data): a bound on what a peer can make us allocate through one paste.
pub(crate) const MAX_TEXT_UNITS: usize = 8 * 1024 * 1024;

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
    RemoteFormats(Vec<ClipboardFormatId>),
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
        let ids = available_formats.iter().map(ClipboardFormat::id).collect();
        self.requests.push_back(Request::RemoteFormats(ids));
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

/// Our side of the shared clipboard, kept across reactivations.
#[derive(Debug, Default)]
pub(crate) struct Clipboard {
    /// The page's clipboard text (LF line ends), announced to the workstation.
    local_text: Option<String>,
    /// The last text received from the workstation: the page writing it back is no change.
    last_remote_text: Option<String>,
    /// Formats of our paste requests not answered yet, oldest first (answers come in order).
    pending_pastes: VecDeque<ClipboardFormatId>,
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

impl Clipboard {
    /// The page's clipboard now holds `text`. Returns the frame to send (a format list) when the
    /// channel is up and the text is news to the workstation; before that, the text is announced
    /// when the channel asks for our formats.
    pub(crate) fn set_local_text(
        &mut self,
        stage: Option<&mut ActiveStage>,
        text: String,
        events: &mut Vec<Event>,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        if text.encode_utf16().count() > MAX_TEXT_UNITS {
            events.push(Event::ClipboardError(TOO_LARGE.to_owned()));
            return Ok(None);
        }
        let unchanged = self.local_text.as_deref() == Some(text.as_str());
        let from_remote = self.last_remote_text.as_deref() == Some(text.as_str());
        self.local_text = Some(text);
        if unchanged || from_remote {
            return Ok(None);
        }
        self.last_remote_text = None;
        let formats = self.local_formats();
        let Some(stage) = stage else { return Ok(None) };
        let Some(cliprdr) = cliprdr(stage).filter(|c| c.is_ready()) else {
            return Ok(None);
        };
        match cliprdr.initiate_copy(&formats) {
            Ok(messages) => encode(stage, messages).map(Some),
            Err(e) => {
                warn("cannot announce the clipboard", e);
                Ok(None)
            }
        }
    }

    fn local_formats(&self) -> Vec<ClipboardFormat> {
        match self.local_text {
            Some(_) => vec![ClipboardFormat::new(ClipboardFormatId::CF_UNICODETEXT)],
            None => Vec::new(),
        }
    }

    /// Acts on what the channel recorded during the last processing; returns frames to send and
    /// pushes events for the page. A clipboard step that fails is logged and skipped: the desktop
    /// matters more than one paste.
    pub(crate) fn drain(
        &mut self,
        stage: &mut ActiveStage,
        events: &mut Vec<Event>,
    ) -> Result<Vec<Vec<u8>>, ClientError> {
        let mut frames = Vec::new();
        loop {
            let Some(cliprdr) = cliprdr(stage) else {
                return Ok(frames);
            };
            let Some(backend) = cliprdr.downcast_backend_mut::<QueueBackend>() else {
                return Ok(frames);
            };
            let Some(request) = backend.requests.pop_front() else {
                return Ok(frames);
            };
            tracing::debug!(request = request.name(), "clipboard");
            let messages = match request {
                Request::AnnounceLocal => cliprdr.initiate_copy(&self.local_formats()).map(Some),
                Request::RemoteFormats(ids) => self.fetch_remote(cliprdr, &ids),
                Request::LocalData(format) => cliprdr.submit_format_data(self.local_data(format)).map(Some),
                Request::RemoteData(data) => {
                    self.remote_data(data, events);
                    Ok(None)
                }
            };
            match messages {
                Ok(Some(messages)) => {
                    let frame = encode(stage, messages)?;
                    tracing::debug!(bytes = frame.len(), "clipboard frame");
                    frames.push(frame)
                }
                Ok(None) => {}
                Err(e) => warn("clipboard step failed", e),
            }
        }
    }

    /// The workstation copied something: fetch it right away when it is text, so the page can put
    /// it on the browser's clipboard while the user still has the desktop in focus.
    fn fetch_remote(
        &mut self,
        cliprdr: &mut CliprdrClient,
        ids: &[ClipboardFormatId],
    ) -> Result<Option<CliprdrSvcMessages<ironrdp_cliprdr::Client>>, ironrdp_pdu::PduError> {
        let format = [ClipboardFormatId::CF_UNICODETEXT, ClipboardFormatId::CF_TEXT]
            .into_iter()
            .find(|wanted| ids.contains(wanted));
        let Some(format) = format else { return Ok(None) };
        let messages = cliprdr.initiate_paste(format)?;
        self.pending_pastes.push_back(format);
        Ok(Some(messages))
    }

    fn local_data(&self, format: ClipboardFormatId) -> OwnedFormatDataResponse {
        match (&self.local_text, format) {
            (Some(text), ClipboardFormatId::CF_UNICODETEXT) => {
                OwnedFormatDataResponse::new_data(encode_unicode_text(text))
            }
            (Some(text), ClipboardFormatId::CF_TEXT) => {
                OwnedFormatDataResponse::new_string(&to_crlf(text).replace(|c: char| !c.is_ascii(), "?"))
            }
            _ => OwnedFormatDataResponse::new_error(),
        }
    }

    fn remote_data(&mut self, data: Option<Vec<u8>>, events: &mut Vec<Event>) {
        let Some(format) = self.pending_pastes.pop_front() else {
            tracing::debug!("clipboard data nobody asked for; ignored");
            return;
        };
        let Some(data) = data else {
            tracing::debug!(?format, "the workstation could not provide its clipboard");
            return;
        };
        let text = match format {
            ClipboardFormatId::CF_UNICODETEXT => decode_unicode_text(&data),
            _ => decode_ansi_text(&data),
        };
        let Some(text) = text else {
            events.push(Event::ClipboardError(TOO_LARGE.to_owned()));
            return;
        };
        self.last_remote_text = Some(text.clone());
        events.push(Event::RemoteClipboardText(text));
    }
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

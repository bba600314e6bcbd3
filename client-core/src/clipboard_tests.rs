use super::*;
use ironrdp_cliprdr::pdu::FormatDataResponse;
use ironrdp_cliprdr::CliprdrServer;
use ironrdp_svc::{SvcMessage, SvcProcessor};
use std::collections::HashMap;

/// Emoji (a surrogate pair), CJK, Arabic and Hebrew (right to left), a combining accent, tabs.
const MIXED: &str = "héllo 👋🏽 日本語 中文 العربية עברית e\u{301}\tend";

#[test]
fn unicode_text_round_trips_through_cf_unicodetext() {
    let wire = encode_unicode_text(MIXED);
    assert_eq!(wire.len() % 2, 0);
    assert_eq!(&wire[wire.len() - 2..], [0, 0], "one terminating NUL");
    // 👋 is U+1F44B: the surrogate pair D83D DC4B, little endian.
    let wave = [0x3d, 0xd8, 0x4b, 0xdc];
    assert!(wire.windows(4).any(|w| w == wave));
    assert_eq!(decode_unicode_text(&wire).as_deref(), Some(MIXED));
}

#[test]
fn line_ends_are_crlf_on_the_wire_and_lf_on_the_page() {
    let wire = encode_unicode_text("a\nb\r\nc\n");
    let units: Vec<u16> = wire.chunks_exact(2).map(|p| u16::from_le_bytes([p[0], p[1]])).collect();
    assert_eq!(String::from_utf16(&units).unwrap(), "a\r\nb\r\nc\r\n\0");
    assert_eq!(decode_unicode_text(&wire).as_deref(), Some("a\nb\nc\n"));
}

#[test]
fn decoding_stops_at_the_first_nul_and_survives_odd_lengths_and_lone_surrogates() {
    let mut wire = encode_unicode_text("kept");
    wire.extend_from_slice(&[b'x', 0, b'y', 0, 0x41]);
    assert_eq!(decode_unicode_text(&wire).as_deref(), Some("kept"));
    // No NUL at all, a trailing odd byte, and an unpaired high surrogate.
    let broken = [b'a', 0, 0x3d, 0xd8, b'b', 0, 7];
    assert_eq!(decode_unicode_text(&broken).as_deref(), Some("a\u{fffd}b"));
    assert_eq!(decode_unicode_text(&[]).as_deref(), Some(""));
}

#[test]
fn a_megabyte_of_text_round_trips() {
    let line = "0123456789 abcdefghij ÄÖÜ 日本 🚀\n";
    let text: String = line.repeat(1024 * 1024 / line.len() + 1);
    assert!(text.len() > 1024 * 1024);
    assert_eq!(
        decode_unicode_text(&encode_unicode_text(&text)).as_deref(),
        Some(text.as_str())
    );
}

#[test]
fn oversized_remote_text_is_refused() {
    let wire = vec![b'a'; (MAX_TEXT_UNITS + 1) * 2];
    assert_eq!(decode_unicode_text(&wire), None);
    assert_eq!(decode_ansi_text(&vec![b'a'; MAX_TEXT_UNITS + 1]), None);
}


// ---- Against a workstation peer: IronRDP's server half of cliprdr ----------------------------------

/// The workstation's clipboard and what it saw of ours.
#[derive(Debug, Default)]
struct Peer {
    /// What the workstation's clipboard serves, by format id.
    holds: HashMap<u32, Vec<u8>>,
    /// Our format lists as the workstation received them.
    announced: Vec<Vec<ClipboardFormat>>,
    /// Formats we asked for, not answered yet, with what the clipboard held when we asked.
    asked: VecDeque<(ClipboardFormatId, Option<Vec<u8>>)>,
    /// Every format we asked for.
    asked_log: Vec<ClipboardFormatId>,
    /// The answers to the workstation's pastes from us.
    pasted: VecDeque<Option<Vec<u8>>>,
}

ironrdp_core::impl_as_any!(Peer);

impl CliprdrBackend for Peer {
    fn temporary_directory(&self) -> &str {
        ".peer"
    }
    fn client_capabilities(&self) -> ClipboardGeneralCapabilityFlags {
        ClipboardGeneralCapabilityFlags::USE_LONG_FORMAT_NAMES
    }
    fn on_ready(&mut self) {}
    fn on_request_format_list(&mut self) {}
    fn on_process_negotiated_capabilities(&mut self, _: ClipboardGeneralCapabilityFlags) {}
    fn on_remote_copy(&mut self, formats: &[ClipboardFormat]) {
        self.announced.push(formats.to_vec());
    }
    fn on_format_data_request(&mut self, request: FormatDataRequest) {
        self.asked.push_back((request.format, self.holds.get(&request.format.value()).cloned()));
        self.asked_log.push(request.format);
    }
    fn on_format_data_response(&mut self, response: FormatDataResponse<'_>) {
        self.pasted.push_back((!response.is_error()).then(|| response.data().to_vec()));
    }
    fn on_file_contents_request(&mut self, _: FileContentsRequest) {}
    fn on_file_contents_response(&mut self, _: FileContentsResponse<'_>) {}
    fn on_lock(&mut self, _: LockDataId) {}
    fn on_unlock(&mut self, _: LockDataId) {}
    fn now_ms(&self) -> u64 {
        0
    }
}

/// Our channel and our side, wired to the workstation peer; everything is delivered until both
/// sides are quiet.
struct Wire {
    client: CliprdrClient,
    ours: Clipboard,
    server: CliprdrServer,
    events: Vec<Event>,
    /// The workstation answers our requests only while this is set (to hold answers back).
    answering: bool,
}

fn bytes(message: &SvcMessage) -> Vec<u8> {
    message.encode_unframed_pdu().expect("encodable")
}

impl Wire {
    fn new() -> Wire {
        let mut wire = Wire {
            client: channel(),
            ours: Clipboard::default(),
            server: CliprdrServer::new(Box::new(Peer::default())),
            events: Vec::new(),
            answering: true,
        };
        let start = wire.server.start().expect("server starts");
        wire.deliver(start);
        assert!(wire.client.is_ready(), "the channel is initialized");
        wire
    }

    fn peer(&mut self) -> &mut Peer {
        self.server.downcast_backend_mut::<Peer>().expect("peer")
    }

    fn deliver(&mut self, mut to_client: Vec<SvcMessage>) {
        loop {
            let mut to_server: Vec<SvcMessage> = Vec::new();
            for message in to_client.drain(..) {
                to_server.extend(self.client.process(&bytes(&message)).expect("client processes"));
                let answers = self.ours.answer_queued(&mut self.client, &mut self.events);
                to_server.extend(answers.into_iter().flat_map(Vec::<SvcMessage>::from));
            }
            for message in to_server {
                to_client.extend(self.server.process(&bytes(&message)).expect("server processes"));
            }
            while self.answering {
                let Some((_, held)) = self.peer().asked.pop_front() else { break };
                let answer = match held {
                    Some(data) => OwnedFormatDataResponse::new_data(data),
                    None => OwnedFormatDataResponse::new_error(),
                };
                to_client.extend(Vec::<SvcMessage>::from(self.server.submit_format_data(answer).expect("answer")));
            }
            if to_client.is_empty() {
                return;
            }
        }
    }

    /// The workstation's clipboard changes to these formats (id, registered name, bytes).
    fn remote_copy(&mut self, formats: &[(u32, Option<&'static str>, Vec<u8>)]) {
        let list: Vec<ClipboardFormat> = formats
            .iter()
            .map(|(id, name, _)| {
                let format = ClipboardFormat::new(ClipboardFormatId(*id));
                match name {
                    Some(name) => format.with_name(ClipboardFormatName::new_static(name)),
                    None => format,
                }
            })
            .collect();
        self.peer().holds = formats.iter().map(|(id, _, data)| (*id, data.clone())).collect();
        let messages = self.server.initiate_copy(&list).expect("copy");
        self.deliver(messages.into());
    }

    /// The page's clipboard changes; returns whether a format list was sent.
    fn local_copy(&mut self, content: ClipboardContent) -> bool {
        match self.ours.offer_local(&mut self.client, content, &mut self.events) {
            Some(messages) => {
                self.deliver_to_server(messages.into());
                true
            }
            None => false,
        }
    }

    fn deliver_to_server(&mut self, messages: Vec<SvcMessage>) {
        let mut to_client = Vec::new();
        for message in messages {
            to_client.extend(self.server.process(&bytes(&message)).expect("server processes"));
        }
        self.deliver(to_client);
    }

    /// A program in the session pastes in this format: the bytes we serve.
    fn remote_paste(&mut self, format: ClipboardFormatId) -> Option<Vec<u8>> {
        let messages = self.server.initiate_paste(format).expect("paste");
        self.deliver(messages.into());
        self.peer().pasted.pop_front().expect("an answer")
    }

    fn remote_clipboards(&mut self) -> Vec<ClipboardContent> {
        self.events
            .drain(..)
            .filter_map(|event| match event {
                Event::RemoteClipboard(content) => Some(content),
                _ => None,
            })
            .collect()
    }
}

/// A 3×2 PNG with alpha, made with the png crate.
fn sample_png(seed: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, 3, 2);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let pixels: Vec<u8> = (0..6u8).flat_map(|i| [i * 40, seed, 255 - i * 30, 255]).collect();
    let mut writer = encoder.write_header().expect("header");
    writer.write_image_data(&pixels).expect("pixels");
    writer.finish().expect("png");
    out
}

/// RGBA pixels of a PNG.
fn png_pixels(png: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
    decoder.set_transformations(png::Transformations::ALPHA | png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("png header");
    let mut buffer = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buffer).expect("png frame");
    buffer.truncate(info.buffer_size());
    (info.width, info.height, buffer)
}

/// A 24-bit bottom-up `CF_DIB` of 2×2 pixels (rows padded to 4 bytes), as xrdp sends a BMP's.
fn sample_dib() -> Vec<u8> {
    let mut dib = Vec::new();
    for value in [40u32, 2, 2] {
        dib.extend(value.to_le_bytes()); // header size, width, height (positive: bottom up)
    }
    dib.extend(1u16.to_le_bytes());
    dib.extend(24u16.to_le_bytes());
    dib.extend([0u8; 24]); // BI_RGB, sizes and colours unset
    // Bottom row first, BGR: blue, green | red, white (top row).
    dib.extend([255, 0, 0, 0, 255, 0, 0, 0]);
    dib.extend([0, 0, 255, 255, 255, 255, 0, 0]);
    dib
}

const HTML_ID: u32 = 0xC1A0;
const PNG_ID: u32 = 0xC1A1;

#[test]
fn a_remote_copy_of_text_html_and_image_arrives_as_one_content() {
    let mut wire = Wire::new();
    let cf_html = html::plain_html_to_cf_html("<b>fett</b> 日本 👋").into_bytes();
    wire.remote_copy(&[
        (ClipboardFormatId::CF_UNICODETEXT.value(), None, encode_unicode_text("fett 日本 👋\nzwei")),
        (HTML_ID, Some("HTML Format"), cf_html),
        (ClipboardFormatId::CF_DIB.value(), None, sample_dib()),
    ]);
    let got = wire.remote_clipboards();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].text.as_deref(), Some("fett 日本 👋\nzwei"));
    assert_eq!(got[0].html.as_deref(), Some("<b>fett</b> 日本 👋"));
    let (width, height, pixels) = png_pixels(got[0].png.as_deref().expect("an image"));
    assert_eq!((width, height), (2, 2));
    // Top row red, white; bottom row blue, green.
    let expected = [[255, 0, 0, 255], [255, 255, 255, 255], [0, 0, 255, 255], [0, 255, 0, 255]];
    assert_eq!(pixels, expected.concat());
    // One request at a time, in the order text, HTML, image.
    assert_eq!(
        wire.peer().asked_log,
        [ClipboardFormatId::CF_UNICODETEXT, ClipboardFormatId(HTML_ID), ClipboardFormatId::CF_DIB]
    );
}

#[test]
fn a_registered_png_is_preferred_to_bitmaps_and_taken_as_it_is() {
    let mut wire = Wire::new();
    let png = sample_png(7);
    wire.remote_copy(&[
        (ClipboardFormatId::CF_DIB.value(), None, sample_dib()),
        (ClipboardFormatId::CF_DIBV5.value(), None, Vec::new()),
        (PNG_ID, Some("PNG"), png.clone()),
    ]);
    assert_eq!(wire.remote_clipboards(), [ClipboardContent { png: Some(png), ..ClipboardContent::default() }]);
    assert_eq!(wire.peer().asked_log, [ClipboardFormatId(PNG_ID)]);
}

#[test]
fn an_image_format_that_fails_is_followed_by_the_next_one() {
    let mut wire = Wire::new();
    // Announced as PNG, DIBV5 and DIB, but only the DIB is served (the PNG is junk, the DIBV5 fails:
    // xrdp 0.9 announces CF_DIBV5 and answers it with an error).
    wire.remote_copy(&[(PNG_ID, Some("PNG"), b"junk".to_vec()), (ClipboardFormatId::CF_DIB.value(), None, sample_dib())]);
    let announced_v5 = wire.server.initiate_copy(&[
        ClipboardFormat::new(ClipboardFormatId(PNG_ID)).with_name(ClipboardFormatName::new_static("PNG")),
        ClipboardFormat::new(ClipboardFormatId::CF_DIBV5),
        ClipboardFormat::new(ClipboardFormatId::CF_DIB),
    ]);
    wire.peer().asked_log.clear();
    wire.remote_clipboards();
    wire.deliver(announced_v5.expect("copy").into());
    let got = wire.remote_clipboards();
    assert_eq!(got.len(), 1);
    assert_eq!(png_pixels(got[0].png.as_deref().expect("the DIB's image")).0, 2);
    assert_eq!(
        wire.peer().asked_log,
        [ClipboardFormatId(PNG_ID), ClipboardFormatId::CF_DIBV5, ClipboardFormatId::CF_DIB]
    );
}

#[test]
fn a_part_the_workstation_cannot_give_or_that_does_not_convert_is_left_out() {
    let mut wire = Wire::new();
    // A "bitmap" that is junk.
    wire.remote_copy(&[(ClipboardFormatId::CF_DIB.value(), None, vec![1, 2, 3])]);
    assert!(wire.remote_clipboards().is_empty(), "nothing usable, nothing for the page");
    let messages = wire
        .server
        .initiate_copy(&[
            ClipboardFormat::new(ClipboardFormatId::CF_UNICODETEXT),
            ClipboardFormat::new(ClipboardFormatId(HTML_ID)).with_name(ClipboardFormatName::HTML),
        ])
        .expect("copy");
    // It holds only the HTML: the text request fails.
    wire.peer().holds = HashMap::from([(HTML_ID, html::plain_html_to_cf_html("<i>nur HTML</i>").into_bytes())]);
    wire.deliver(messages.into());
    let got = wire.remote_clipboards();
    assert_eq!(got, [ClipboardContent { html: Some("<i>nur HTML</i>".into()), ..ClipboardContent::default() }]);
}

#[test]
fn a_new_copy_during_a_fetch_replaces_it_and_late_answers_are_dropped() {
    let mut wire = Wire::new();
    wire.answering = false;
    wire.remote_copy(&[(ClipboardFormatId::CF_UNICODETEXT.value(), None, encode_unicode_text("old"))]);
    assert_eq!(wire.peer().asked.len(), 1, "the old copy's text was asked for");
    // The workstation's clipboard changes before it answers; then it answers both, in order.
    let cf_html = html::plain_html_to_cf_html("<u>new</u>").into_bytes();
    wire.remote_copy(&[(HTML_ID, Some("HTML Format"), cf_html)]);
    assert_eq!(wire.peer().asked.len(), 1, "no second request while one is in flight");
    wire.answering = true;
    wire.deliver(Vec::new());
    // The old copy's text is not mixed into the new copy.
    let new = ClipboardContent { html: Some("<u>new</u>".into()), ..ClipboardContent::default() };
    assert_eq!(wire.remote_clipboards(), [new]);
}

#[test]
fn the_pages_text_html_and_image_are_announced_and_served() {
    let mut wire = Wire::new();
    let png = sample_png(99);
    let content = ClipboardContent {
        text: Some("Zeile 1\nZeile 2 ✓".into()),
        html: Some("<p>Zeile <b>1</b></p>".into()),
        png: Some(png.clone()),
    };
    assert!(wire.local_copy(content.clone()));
    let announced = wire.peer().announced.last().cloned().expect("a format list");
    let ids: Vec<u32> = announced.iter().map(|f| f.id().value()).collect();
    assert_eq!(ids, [13, LOCAL_HTML_ID.value(), 8, LOCAL_PNG_ID.value()]);
    let names: Vec<Option<&str>> = announced.iter().map(|f| f.name().map(|n| n.value())).collect();
    assert_eq!(names[1], Some("HTML Format"));
    assert_eq!(names[3], Some("PNG"));

    let text = wire.remote_paste(ClipboardFormatId::CF_UNICODETEXT).expect("text");
    assert_eq!(decode_unicode_text(&text).as_deref(), Some("Zeile 1\nZeile 2 ✓"));
    let cf_html = wire.remote_paste(LOCAL_HTML_ID).expect("html");
    assert_eq!(html::cf_html_to_plain_html(&cf_html).expect("CF_HTML"), "<p>Zeile <b>1</b></p>");
    assert_eq!(wire.remote_paste(LOCAL_PNG_ID).as_deref(), Some(png.as_slice()));
    // The DIB holds the PNG's pixels: it converts back to the same image.
    let dib = wire.remote_paste(ClipboardFormatId::CF_DIB).expect("dib");
    assert_eq!(png_pixels(&bitmap::dib_to_png(&dib).expect("a DIB")), {
        let (w, h, rgba) = png_pixels(&png);
        (w, h, rgba)
    });
    // Formats we do not hold.
    assert_eq!(wire.remote_paste(ClipboardFormatId::CF_DIBV5), None);
    // The same content again is no news.
    assert!(!wire.local_copy(content));
}

#[test]
fn the_workstations_copy_written_back_by_the_page_is_not_announced_again() {
    let mut wire = Wire::new();
    wire.remote_copy(&[
        (ClipboardFormatId::CF_UNICODETEXT.value(), None, encode_unicode_text("von drüben")),
        (ClipboardFormatId::CF_DIB.value(), None, sample_dib()),
    ]);
    let got = wire.remote_clipboards().pop().expect("the copy");
    // The browser re-encodes images and decorates HTML: only the text and the pixels count.
    let (w, h, rgba) = png_pixels(got.png.as_deref().expect("image"));
    let mut reencoded = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut reencoded, w, h);
        encoder.set_color(png::ColorType::Rgba);
        let mut writer = encoder.write_header().expect("header");
        writer.write_image_data(&rgba).expect("pixels");
    }
    assert_ne!(reencoded, got.png.clone().expect("image"));
    let echo = ClipboardContent { html: Some("<meta charset='utf-8'>von".into()), png: Some(reencoded), ..got.clone() };
    assert!(!wire.local_copy(echo));
    // A different image with the same text is news.
    let changed = ClipboardContent { png: Some(sample_png(1)), ..got };
    assert!(wire.local_copy(changed));
}

#[test]
fn page_content_beyond_the_limits_is_left_out_with_a_sentence() {
    let mut wire = Wire::new();
    let content = ClipboardContent {
        text: Some("kept".into()),
        html: Some("x".repeat(MAX_HTML_BYTES + 1)),
        png: Some(b"\x89PNG\r\n\x1a\nnot really".to_vec()),
    };
    assert!(wire.local_copy(content));
    let errors: Vec<String> = wire
        .events
        .drain(..)
        .filter_map(|e| match e {
            Event::ClipboardError(message) => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("HTML is too large"), "{}", errors[0]);
    assert!(errors[1].starts_with("The copied image cannot be shared"), "{}", errors[1]);
    let ids: Vec<u32> = wire.peer().announced.last().expect("list").iter().map(|f| f.id().value()).collect();
    assert_eq!(ids, [13], "only the text is announced");
    // Text over the limit alone: nothing to share, nothing announced.
    assert!(!wire.local_copy(ClipboardContent::text("a".repeat(MAX_TEXT_UNITS + 1))));
    assert!(matches!(wire.events.as_slice(), [Event::ClipboardError(_)]));
}

#[test]
fn ansi_text_is_served_and_read_with_crlf() {
    let mut wire = Wire::new();
    assert!(wire.local_copy(ClipboardContent::text("a\nb €")));
    assert_eq!(wire.remote_paste(ClipboardFormatId::CF_TEXT).as_deref(), Some(&b"a\r\nb ?\0"[..]));
    assert_eq!(decode_ansi_text(b"x\r\ny\0junk").as_deref(), Some("x\ny"));
    wire.remote_copy(&[(ClipboardFormatId::CF_TEXT.value(), None, b"ansi\r\nzwei\0".to_vec())]);
    assert_eq!(wire.remote_clipboards(), [ClipboardContent::text("ansi\nzwei")]);
}

#[test]
fn content_set_before_the_channel_is_announced_when_it_asks() {
    let mut ours = Clipboard::default();
    let mut events = Vec::new();
    assert_eq!(ours.set_local(None, ClipboardContent::text("early"), &mut events).unwrap(), None);
    let mut wire = Wire { ours, ..Wire::new_unstarted() };
    let start = wire.server.start().expect("server starts");
    wire.deliver(start);
    let ids: Vec<u32> = wire.peer().announced.last().expect("list").iter().map(|f| f.id().value()).collect();
    assert_eq!(ids, [13]);
    assert_eq!(wire.remote_paste(ClipboardFormatId::CF_UNICODETEXT), Some(encode_unicode_text("early")));
}

impl Wire {
    fn new_unstarted() -> Wire {
        Wire {
            client: channel(),
            ours: Clipboard::default(),
            server: CliprdrServer::new(Box::new(Peer::default())),
            events: Vec::new(),
            answering: true,
        }
    }
}

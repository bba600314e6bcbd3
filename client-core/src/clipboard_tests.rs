use super::*;

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

#[test]
fn ansi_text_is_served_and_read_with_crlf() {
    let clipboard = Clipboard {
        local_text: Some("a\nb €".to_owned()),
        ..Clipboard::default()
    };
    let response = clipboard.local_data(ClipboardFormatId::CF_TEXT);
    assert!(!response.is_error());
    assert_eq!(response.data(), b"a\r\nb ?\0");
    assert_eq!(decode_ansi_text(b"x\r\ny\0junk").as_deref(), Some("x\ny"));
}

#[test]
fn formats_we_do_not_hold_are_answered_with_an_error() {
    let empty = Clipboard::default();
    assert!(empty.local_data(ClipboardFormatId::CF_UNICODETEXT).is_error());
    assert!(empty.local_formats().is_empty());
    let text = Clipboard {
        local_text: Some("x".to_owned()),
        ..Clipboard::default()
    };
    assert!(text.local_data(ClipboardFormatId::CF_DIB).is_error());
    assert_eq!(
        text.local_formats(),
        [ClipboardFormat::new(ClipboardFormatId::CF_UNICODETEXT)]
    );
}

#[test]
fn text_set_before_the_session_is_stored_and_remote_echoes_are_not_announced() {
    let mut clipboard = Clipboard::default();
    let mut events = Vec::new();
    assert_eq!(
        clipboard.set_local_text(None, "early".to_owned(), &mut events).unwrap(),
        None
    );
    assert_eq!(clipboard.local_text.as_deref(), Some("early"));

    clipboard.pending_pastes.push_back(ClipboardFormatId::CF_UNICODETEXT);
    clipboard.remote_data(Some(encode_unicode_text("from the workstation")), &mut events);
    assert_eq!(events, [Event::RemoteClipboardText("from the workstation".to_owned())]);
    // The page writes it to its clipboard and reports it back: that is not a new copy.
    clipboard
        .set_local_text(None, "from the workstation".to_owned(), &mut events)
        .unwrap();
    assert_eq!(clipboard.last_remote_text.as_deref(), Some("from the workstation"));

    // An answer nobody asked for, or a failed answer, produces nothing.
    let mut more = Vec::new();
    clipboard.remote_data(Some(encode_unicode_text("stray")), &mut more);
    clipboard.pending_pastes.push_back(ClipboardFormatId::CF_UNICODETEXT);
    clipboard.remote_data(None, &mut more);
    assert!(more.is_empty());
}

#[test]
fn oversized_local_text_is_reported_not_fatal() {
    let mut clipboard = Clipboard::default();
    let mut events = Vec::new();
    let huge = "a".repeat(MAX_TEXT_UNITS + 1);
    assert_eq!(clipboard.set_local_text(None, huge, &mut events).unwrap(), None);
    assert!(matches!(events.as_slice(), [Event::ClipboardError(_)]));
    assert_eq!(clipboard.local_text, None);
}

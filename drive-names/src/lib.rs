//! File names and paths that may enter the browser's drive, checked in one place.
//!
//! Names come from two untrusted sides: the workstation (every path in a drive request) and the page
//! (the name of a file the user uploads, which a hostile web page or file system may have chosen).
//! Both go through [`check_name`], so the store only ever sees relative paths made of plain
//! components: no `.`/`..`, no separators or drive letters inside a component (no absolute or UNC
//! paths), no NUL or control characters, no Windows-reserved device names or characters, no trailing
//! dot or space (Windows would silently strip them and two names would meet), bounded lengths.

use core::fmt;

/// Longest component in UTF-16 units (NTFS and most file systems: 255).
pub const MAX_NAME_UNITS: usize = 255;
/// Longest path in UTF-16 units (separators included); far beyond what people use, far below what
/// would cost memory.
pub const MAX_PATH_UNITS: usize = 1024;
/// Deepest path accepted.
pub const MAX_DEPTH: usize = 32;

/// Why a name or path was refused; the text is for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    DotOrDotDot,
    /// `/`, `\` or `:` inside a name: a path, a drive letter or a stream.
    Separator,
    Nul,
    ControlCharacter,
    /// One of `< > " | ? *`.
    ReservedCharacter(char),
    /// CON, PRN, AUX, NUL, COM1-9, LPT1-9 (also with an extension).
    ReservedName(String),
    TrailingDotOrSpace,
    TooLong,
    PathTooLong,
    TooDeep,
    /// A leading separator: a folder setting is relative to the drive's root.
    NotRelative,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => write!(f, "the name is empty"),
            NameError::DotOrDotDot => write!(f, "\".\" and \"..\" are not file names"),
            NameError::Separator => write!(f, "the name contains a path separator or a colon"),
            NameError::Nul => write!(f, "the name contains a NUL character"),
            NameError::ControlCharacter => write!(f, "the name contains a control character"),
            NameError::ReservedCharacter(c) => write!(f, "the name contains the reserved character {c:?}"),
            NameError::ReservedName(name) => write!(f, "{name} is a reserved device name on Windows"),
            NameError::TrailingDotOrSpace => write!(f, "the name ends with a dot or a space"),
            NameError::TooLong => write!(f, "the name is longer than {MAX_NAME_UNITS} characters"),
            NameError::PathTooLong => write!(f, "the path is longer than {MAX_PATH_UNITS} characters"),
            NameError::TooDeep => write!(f, "the path is deeper than {MAX_DEPTH} folders"),
            NameError::NotRelative => write!(f, "the path starts with a separator (give it relative to the drive)"),
        }
    }
}

impl std::error::Error for NameError {}

const RESERVED_DEVICES: [&str; 4] = ["CON", "PRN", "AUX", "NUL"];

/// Checks one path component (a file or folder name).
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name == "." || name == ".." {
        return Err(NameError::DotOrDotDot);
    }
    if name.encode_utf16().count() > MAX_NAME_UNITS {
        return Err(NameError::TooLong);
    }
    for c in name.chars() {
        match c {
            '\0' => return Err(NameError::Nul),
            '/' | '\\' | ':' => return Err(NameError::Separator),
            '<' | '>' | '"' | '|' | '?' | '*' => return Err(NameError::ReservedCharacter(c)),
            c if c.is_control() => return Err(NameError::ControlCharacter),
            _ => {}
        }
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Err(NameError::TrailingDotOrSpace);
    }
    if let Some(device) = reserved_device(name) {
        return Err(NameError::ReservedName(device));
    }
    Ok(())
}

/// The reserved device a name stands for on Windows ("con", "Com1.txt", "LPT9 .log"), if any.
fn reserved_device(name: &str) -> Option<String> {
    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ').to_ascii_uppercase();
    let numbered = |prefix: &str| {
        stem.strip_prefix(prefix)
            .is_some_and(|digit| matches!(digit, "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "¹" | "²" | "³"))
    };
    (RESERVED_DEVICES.contains(&stem.as_str()) || numbered("COM") || numbered("LPT")).then_some(stem)
}

/// A checked path inside the drive: zero (the root) or more valid components.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct DrivePath(Vec<String>);

impl DrivePath {
    /// The drive's root folder.
    pub fn root() -> DrivePath {
        DrivePath(Vec::new())
    }

    /// A path as the workstation sends it (`\folder\file.txt`, `\` or empty for the root). Both `\`
    /// and `/` separate (Windows accepts both, and xrdp 0.9 sends `/` when it opens a file). One
    /// leading and one trailing separator are allowed; everything between must be valid names.
    pub fn from_wire(path: &str) -> Result<DrivePath, NameError> {
        Self::parse(path, &['\\', '/'])
    }

    /// A path written with `/` (the page's own paths, e.g. `Uploads/report.pdf`).
    pub fn parse_slashed(path: &str) -> Result<DrivePath, NameError> {
        Self::parse(path, &['/'])
    }

    fn parse(path: &str, separators: &[char]) -> Result<DrivePath, NameError> {
        if path.encode_utf16().count() > MAX_PATH_UNITS {
            return Err(NameError::PathTooLong);
        }
        let inner = path.strip_prefix(separators).unwrap_or(path);
        let inner = inner.strip_suffix(separators).unwrap_or(inner);
        if inner.is_empty() {
            return Ok(DrivePath::root());
        }
        let components: Vec<String> = inner.split(separators).map(str::to_owned).collect();
        if components.len() > MAX_DEPTH {
            return Err(NameError::TooDeep);
        }
        for component in &components {
            check_name(component)?;
        }
        Ok(DrivePath(components))
    }

    /// A folder setting (the portal's upload or download folder): a path inside the drive written with
    /// `/` or `\` such as `Uploads` or `Team/In`; `None` when empty (the default applies). Absolute paths
    /// (`/x`, `C:\x`, `\\server`) and anything [`check_name`] refuses in a component are errors.
    pub fn folder_setting(value: &str) -> Result<Option<DrivePath>, NameError> {
        if value.is_empty() {
            return Ok(None);
        }
        if value.starts_with(['/', '\\']) {
            return Err(NameError::NotRelative);
        }
        Self::from_wire(value).map(Some)
    }

    /// This path with one more (checked) component.
    pub fn join(&self, name: &str) -> Result<DrivePath, NameError> {
        check_name(name)?;
        if self.0.len() >= MAX_DEPTH {
            return Err(NameError::TooDeep);
        }
        let mut components = self.0.clone();
        components.push(name.to_owned());
        Ok(DrivePath(components))
    }

    pub fn components(&self) -> &[String] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The last component; `None` for the root.
    pub fn file_name(&self) -> Option<&str> {
        self.0.last().map(String::as_str)
    }

    /// The folder holding this path; `None` for the root.
    pub fn parent(&self) -> Option<DrivePath> {
        let (_, parent) = self.0.split_last()?;
        Some(DrivePath(parent.to_vec()))
    }

    /// Whether `self` is `folder` or inside it (case-insensitively, as Windows compares names).
    pub fn is_within(&self, folder: &DrivePath) -> bool {
        self.0.len() >= folder.0.len() && self.0.iter().zip(&folder.0).all(|(a, b)| a.eq_ignore_ascii_case(b))
    }
}

impl fmt::Display for DrivePath {
    /// `/`-separated, without a leading separator (the root is empty).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_settings_are_relative_folders_of_the_drive() {
        assert_eq!(DrivePath::folder_setting(""), Ok(None));
        let path = |parts: &[&str]| Some(DrivePath(parts.iter().map(|p| (*p).to_owned()).collect()));
        assert_eq!(DrivePath::folder_setting("Inbox"), Ok(path(&["Inbox"])));
        assert_eq!(DrivePath::folder_setting("Team/In"), Ok(path(&["Team", "In"])));
        assert_eq!(DrivePath::folder_setting("Team\\In\\"), Ok(path(&["Team", "In"])));
        for (bad, error) in [
            ("C:\\Uploads", NameError::Separator),
            ("C:", NameError::Separator),
            ("/Uploads", NameError::NotRelative),
            ("\\\\server\\share", NameError::NotRelative),
            ("/", NameError::NotRelative),
            ("Team/../x", NameError::DotOrDotDot),
            ("..", NameError::DotOrDotDot),
            ("a//b", NameError::Empty),
            ("Team/CON", NameError::ReservedName("CON".into())),
            ("In?", NameError::ReservedCharacter('?')),
            ("Inbox.", NameError::TrailingDotOrSpace),
        ] {
            assert_eq!(DrivePath::folder_setting(bad), Err(error), "{bad:?}");
        }
    }

    #[test]
    fn ordinary_names_pass() {
        for name in [
            "report.pdf",
            "Grüße — 日本語.txt",
            ".hidden",
            "a..b",
            "...x",
            "name with spaces.doc",
            "CONSOLE.txt",
            "COM10",
            "LPT0",
            "nul-terminated.txt",
            "emoji 😀.png",
        ] {
            assert_eq!(check_name(name), Ok(()), "{name:?}");
        }
        assert_eq!(check_name(&"x".repeat(MAX_NAME_UNITS)), Ok(()));
    }

    #[test]
    fn dots_and_empty_are_refused() {
        assert_eq!(check_name(""), Err(NameError::Empty));
        assert_eq!(check_name("."), Err(NameError::DotOrDotDot));
        assert_eq!(check_name(".."), Err(NameError::DotOrDotDot));
    }

    #[test]
    fn separators_drive_letters_and_streams_are_refused() {
        for name in ["a/b", "a\\b", "/etc", "\\\\server", "C:", "C:\\Windows", "file.txt:stream", "../x", "..\\x"] {
            assert_eq!(check_name(name), Err(NameError::Separator), "{name:?}");
        }
    }

    #[test]
    fn nul_and_control_characters_are_refused() {
        assert_eq!(check_name("a\0b"), Err(NameError::Nul));
        assert_eq!(check_name("\0"), Err(NameError::Nul));
        for name in ["a\nb", "tab\there", "bell\u{7}", "del\u{7f}", "c1\u{85}"] {
            assert_eq!(check_name(name), Err(NameError::ControlCharacter), "{name:?}");
        }
    }

    #[test]
    fn windows_reserved_characters_are_refused() {
        for c in ['<', '>', '"', '|', '?', '*'] {
            assert_eq!(check_name(&format!("a{c}b")), Err(NameError::ReservedCharacter(c)));
        }
    }

    #[test]
    fn reserved_device_names_are_refused_in_any_case_and_with_extensions() {
        for name in
            ["CON", "con", "Prn", "aux.txt", "NUL.tar.gz", "COM1", "com9.log", "LPT1", "lpt5.x", "COM¹", "CON .txt"]
        {
            assert!(matches!(check_name(name), Err(NameError::ReservedName(_))), "{name:?}");
        }
    }

    #[test]
    fn trailing_dot_or_space_is_refused() {
        for name in ["file.", "file ", "x. ", "... "] {
            assert_eq!(check_name(name), Err(NameError::TrailingDotOrSpace), "{name:?}");
        }
    }

    #[test]
    fn very_long_names_are_refused_by_utf16_length() {
        assert_eq!(check_name(&"x".repeat(MAX_NAME_UNITS + 1)), Err(NameError::TooLong));
        // 128 characters outside the BMP are 256 UTF-16 units.
        assert_eq!(check_name(&"😀".repeat(128)), Err(NameError::TooLong));
        assert_eq!(check_name(&"😀".repeat(127)), Ok(()));
        assert_eq!(check_name(&"x".repeat(100_000)), Err(NameError::TooLong));
    }

    #[test]
    fn wire_paths_split_on_backslashes() {
        assert_eq!(DrivePath::from_wire(""), Ok(DrivePath::root()));
        assert_eq!(DrivePath::from_wire("\\"), Ok(DrivePath::root()));
        let path = DrivePath::from_wire("\\Downloads\\report.pdf").unwrap();
        assert_eq!(path.components(), ["Downloads", "report.pdf"]);
        assert_eq!(path.to_string(), "Downloads/report.pdf");
        assert_eq!(path.file_name(), Some("report.pdf"));
        assert_eq!(path.parent(), Some(DrivePath::from_wire("\\Downloads").unwrap()));
        assert_eq!(DrivePath::from_wire("\\Downloads\\").unwrap().components(), ["Downloads"]);
        // xrdp 0.9 opens files with `/` paths.
        assert_eq!(DrivePath::from_wire("/Uploads/a b.txt").unwrap().components(), ["Uploads", "a b.txt"]);
    }

    #[test]
    fn hostile_wire_paths_are_refused() {
        for (path, error) in [
            ("\\..\\etc\\passwd", NameError::DotOrDotDot),
            ("\\a\\..\\..\\b", NameError::DotOrDotDot),
            ("\\a\\.\\b", NameError::DotOrDotDot),
            ("\\\\server\\share", NameError::Empty),
            ("\\a\\\\b", NameError::Empty),
            ("C:\\Windows", NameError::Separator),
            ("/../x", NameError::DotOrDotDot),
            ("\\a/../../b", NameError::DotOrDotDot),
            ("//server/share", NameError::Empty),
            ("\\a\0b", NameError::Nul),
            ("\\CON", NameError::ReservedName("CON".to_owned())),
            ("\\dir.\\x", NameError::TrailingDotOrSpace),
        ] {
            assert_eq!(DrivePath::from_wire(path), Err(error), "{path:?}");
        }
    }

    #[test]
    fn long_and_deep_paths_are_refused() {
        let long = format!("\\{}", vec!["x".repeat(200); 6].join("\\"));
        assert_eq!(DrivePath::from_wire(&long), Err(NameError::PathTooLong));
        let deep = "\\a".repeat(MAX_DEPTH + 1);
        assert_eq!(DrivePath::from_wire(&deep), Err(NameError::TooDeep));
        assert!(DrivePath::from_wire(&"\\a".repeat(MAX_DEPTH)).is_ok());
        let deepest = DrivePath::from_wire(&"\\a".repeat(MAX_DEPTH)).unwrap();
        assert_eq!(deepest.join("b"), Err(NameError::TooDeep));
    }

    #[test]
    fn slashed_paths_and_join_check_every_component() {
        assert_eq!(DrivePath::parse_slashed("Uploads/a.txt").unwrap().components(), ["Uploads", "a.txt"]);
        assert_eq!(DrivePath::parse_slashed("Uploads/../x"), Err(NameError::DotOrDotDot));
        assert_eq!(DrivePath::parse_slashed("Uploads\\x"), Err(NameError::Separator));
        let uploads = DrivePath::parse_slashed("Uploads").unwrap();
        assert_eq!(uploads.join(".."), Err(NameError::DotOrDotDot));
        assert_eq!(uploads.join("a/b"), Err(NameError::Separator));
        assert_eq!(uploads.join("ok.txt").unwrap().to_string(), "Uploads/ok.txt");
    }

    #[test]
    fn within_compares_names_case_insensitively() {
        let downloads = DrivePath::parse_slashed("Downloads").unwrap();
        assert!(DrivePath::parse_slashed("downloads/x.pdf").unwrap().is_within(&downloads));
        assert!(downloads.is_within(&downloads));
        assert!(!DrivePath::parse_slashed("Downloadsx/x.pdf").unwrap().is_within(&downloads));
        assert!(!DrivePath::root().is_within(&downloads));
    }
}

//! Time-based one-time passwords (RFC 6238 TOTP over RFC 4226 HOTP), sans-I/O.
//!
//! This module holds the arithmetic and the security decisions of the second factor; it does no I/O,
//! reads no clock and stores nothing. The caller passes the current Unix time and the last step the
//! user already spent, and persists the step [`verify`] returns (see [`Verified`] for how, atomically).
//!
//! - Steps are [`STEP_SECONDS`] (30 s) long, counted from the Unix epoch (UTC): `step = unix_secs / 30`.
//! - [`Algorithm`]: HMAC-SHA1 (the default, and the only one every authenticator app supports),
//!   HMAC-SHA256, HMAC-SHA512.
//! - [`Digits`]: 4..=12, default 6. Up to 9 digits the code is RFC 4226's dynamic truncation to
//!   31 bits, modulo 10^digits. 31 bits cannot cover 10 or more digits (10^9 < 2^31 < 10^10), so for
//!   10..=12 digits we use a 64-bit variant, see [`hotp`]. **That variant is Homedesk's own**: other
//!   implementations (and authenticator apps, most of which only do 6 or 8 digits) will disagree, so
//!   enrolment with a phone app should offer 6 or 8 digits only.
//! - Codes are parsed strictly (see [`verify`]): exactly `digits` ASCII digits, nothing else — no
//!   spaces anywhere (not even one inner space as in "123 456"), no signs, no Unicode digits, no
//!   surrounding whitespace. A UI that shows the code in groups must strip its own separators before
//!   submitting.
//! - Secrets come from the OS CSPRNG ([`new_secret`], 160 bits) and are shown to the user as RFC 4648
//!   base32 without padding ([`base32_secret`]) inside a Key Uri ([`otpauth_uri`]).
//! - [`TotpError`] never carries the secret or the submitted code, so logging it is safe.

use hmac::{Hmac, Mac};
use rand::TryRngCore;
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

/// Length of one time step in seconds (RFC 6238's default `X`, the only period apps reliably support).
pub const STEP_SECONDS: u64 = 30;

/// Largest accepted `discrepancy` (steps tolerated each way): 480 steps = 4 hours of clock skew.
pub const MAX_DISCREPANCY: u32 = 480;

/// Length of the secrets [`new_secret`] makes: 20 bytes = 160 bits, RFC 4226's recommendation and
/// the output size of SHA-1.
pub const SECRET_LEN: usize = 20;

/// Why a TOTP operation failed. Messages are for humans and never contain the secret or the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    /// The submitted code is not exactly `digits` ASCII digits.
    #[error(
        "the code must be exactly {expected} digits (0-9), without spaces or other characters"
    )]
    Malformed {
        /// How many digits were expected.
        expected: u8,
    },
    /// Well-formed, but matches no step in the accepted window.
    #[error("the code is wrong or has expired")]
    Invalid,
    /// Matches a step that was already used (or one older than the last used step).
    #[error("this code has already been used; wait for the next one")]
    Reused,
    /// Number of digits outside 4..=12.
    #[error("a one-time code must have between 4 and 12 digits, not {got}")]
    BadDigits {
        /// The refused value.
        got: u32,
    },
    /// Discrepancy above [`MAX_DISCREPANCY`].
    #[error("the allowed clock drift must be at most {MAX_DISCREPANCY} steps, not {got}")]
    BadDiscrepancy {
        /// The refused value.
        got: u32,
    },
}

/// The HMAC hash function (the `algorithm=` parameter of the Key Uri).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// HMAC-SHA-1: RFC 4226's function and the only one all authenticator apps support.
    #[default]
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl Algorithm {
    /// The name used in Key Uris (`SHA1`, `SHA256`, `SHA512`).
    pub fn uri_name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }

    /// Reads `SHA1`, `SHA256` or `SHA512` (case-insensitive, an optional dash as in `SHA-256`);
    /// `None` for anything else.
    pub fn parse(text: &str) -> Option<Algorithm> {
        match text.to_ascii_uppercase().replace('-', "").as_str() {
            "SHA1" => Some(Algorithm::Sha1),
            "SHA256" => Some(Algorithm::Sha256),
            "SHA512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

/// Number of digits of a code, validated to 4..=12 (default 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digits(u8);

impl Digits {
    /// Fewest digits accepted.
    pub const MIN: u8 = 4;
    /// Most digits accepted (the 64-bit truncation gives 18 decimal digits of room; 12 is plenty).
    pub const MAX: u8 = 12;

    /// Validates `n` ∈ 4..=12.
    pub fn new(n: u32) -> Result<Self, TotpError> {
        if (u32::from(Self::MIN)..=u32::from(Self::MAX)).contains(&n) {
            Ok(Digits(n as u8))
        } else {
            Err(TotpError::BadDigits { got: n })
        }
    }

    /// The number of digits.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for Digits {
    fn default() -> Self {
        Digits(6)
    }
}

/// Verification settings: algorithm, digits and tolerated clock drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    algorithm: Algorithm,
    digits: Digits,
    discrepancy: u32,
}

impl Params {
    /// Validates `discrepancy` ≤ [`MAX_DISCREPANCY`] (steps accepted before and after the current one).
    pub fn new(algorithm: Algorithm, digits: Digits, discrepancy: u32) -> Result<Self, TotpError> {
        if discrepancy > MAX_DISCREPANCY {
            return Err(TotpError::BadDiscrepancy { got: discrepancy });
        }
        Ok(Params {
            algorithm,
            digits,
            discrepancy,
        })
    }

    /// The HMAC function.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The code length.
    pub fn digits(&self) -> Digits {
        self.digits
    }

    /// Steps tolerated each way around the current one.
    pub fn discrepancy(&self) -> u32 {
        self.discrepancy
    }
}

impl Default for Params {
    /// SHA-1, 6 digits, one step (30 s) of drift each way.
    fn default() -> Self {
        Params {
            algorithm: Algorithm::Sha1,
            digits: Digits::default(),
            discrepancy: 1,
        }
    }
}

/// A successful verification.
///
/// The caller must persist `step` as the user's last used step, atomically and conditionally, so that
/// two racing requests carrying the same code have exactly one winner:
///
/// ```sql
/// UPDATE users SET last_step = ? WHERE user = ? AND (last_step IS NULL OR last_step < ?)
/// ```
///
/// (binding `step` to both placeholders), and accept the login only if that statement changed one
/// row. Reading `last_step`, calling [`verify`] and then writing unconditionally is a race.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The time step the code belonged to; store it as the new `last_used_step`.
    pub step: u64,
}

/// The time step containing `unix_secs`: `unix_secs / 30`.
pub fn time_step(unix_secs: u64) -> u64 {
    unix_secs / STEP_SECONDS
}

/// HMAC of `msg` under `key`, as (buffer, used length).
fn hmac_tag(alg: Algorithm, key: &[u8], msg: &[u8]) -> ([u8; 64], usize) {
    let mut out = [0u8; 64];
    macro_rules! run {
        ($digest:ty) => {{
            // HMAC takes keys of any length, so this cannot fail.
            let mut mac =
                <Hmac<$digest> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
            mac.update(msg);
            let tag = mac.finalize().into_bytes();
            out[..tag.len()].copy_from_slice(&tag);
            tag.len()
        }};
    }
    let len = match alg {
        Algorithm::Sha1 => run!(Sha1),
        Algorithm::Sha256 => run!(Sha256),
        Algorithm::Sha512 => run!(Sha512),
    };
    (out, len)
}

/// The HOTP value for `counter` as a number below 10^digits.
///
/// - digits ≤ 9: RFC 4226 §5.3 dynamic truncation: `offset = last byte & 0x0f`, the 4 bytes at
///   `offset` big-endian with the top bit cleared (31 bits), modulo 10^digits.
/// - digits 10..=12 (Homedesk extension, not interoperable): 31 bits only reach 2 147 483 647, so
///   the 8 bytes at `offset` are read big-endian with the top bit cleared (63 bits) modulo
///   10^digits. For SHA-1's 20-byte tag the offset is capped at 11 so the window stays inside the
///   tag and, as in RFC 4226, never includes the last byte that chose the offset. The modulo bias
///   is below 10^12 / 2^63 ≈ 10^-7.
fn hotp_value(secret: &[u8], counter: u64, alg: Algorithm, digits: Digits) -> u64 {
    let (tag, len) = hmac_tag(alg, secret, &counter.to_be_bytes());
    let tag = &tag[..len];
    let nibble = usize::from(tag[len - 1] & 0x0f);
    let d = u32::from(digits.get());
    if d <= 9 {
        let bin = u32::from_be_bytes([
            tag[nibble],
            tag[nibble + 1],
            tag[nibble + 2],
            tag[nibble + 3],
        ]) & 0x7fff_ffff;
        u64::from(bin) % 10u64.pow(d)
    } else {
        let offset = nibble.min(len - 9);
        let mut eight = [0u8; 8];
        eight.copy_from_slice(&tag[offset..offset + 8]);
        (u64::from_be_bytes(eight) & 0x7fff_ffff_ffff_ffff) % 10u64.pow(d)
    }
}

/// Writes `value` zero-padded to `digits` ASCII digits into a fixed buffer (no allocation).
fn code_bytes(value: u64, digits: Digits) -> [u8; Digits::MAX as usize] {
    let mut out = [0u8; Digits::MAX as usize];
    let mut v = value;
    for slot in out[..usize::from(digits.get())].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out
}

/// The RFC 4226 HOTP code for `counter`, zero-padded to `digits` (see [`hotp_value`] for 10+ digits).
pub fn hotp(secret: &[u8], counter: u64, alg: Algorithm, digits: Digits) -> String {
    let n = usize::from(digits.get());
    let bytes = code_bytes(hotp_value(secret, counter, alg, digits), digits);
    String::from_utf8(bytes[..n].to_vec()).expect("ASCII digits")
}

/// The TOTP code for `time_step` (see [`time_step`]), zero-padded to `digits`. This is [`hotp`] with
/// the step as counter (RFC 6238 §4.2).
pub fn generate(secret: &[u8], time_step: u64, alg: Algorithm, digits: Digits) -> String {
    hotp(secret, time_step, alg, digits)
}

/// Checks a code the user typed.
///
/// 1. Parsing is strict and happens before anything else: `code_input` must be exactly
///    `params.digits()` bytes long — checked first, on the length alone, so a huge input is refused
///    in O(1) without copying — and every byte must be an ASCII digit `0-9`. Spaces (leading,
///    trailing and inner: "123 456" is refused), signs, Unicode digits ('١', '１') and empty input
///    are all [`TotpError::Malformed`].
/// 2. Every step in `[now - d, now + d]` (d = `params.discrepancy()`, clamped at 0 and `u64::MAX`)
///    is computed and compared in constant time; the loop does not stop at the first match.
/// 3. Steps `≤ last_used_step` do not count (single use). If the code matches only such steps the
///    answer is [`TotpError::Reused`]; if it matches none, [`TotpError::Invalid`].
///    If it matches several fresh steps (a collision, about 10^-digits per pair), the latest one is
///    returned so the same string can never be accepted twice.
///
/// On success persist [`Verified::step`] atomically as described on [`Verified`].
pub fn verify(
    secret: &[u8],
    code_input: &str,
    now_unix_secs: u64,
    params: &Params,
    last_used_step: Option<u64>,
) -> Result<Verified, TotpError> {
    let digits = params.digits;
    let n = usize::from(digits.get());
    let input = code_input.as_bytes();
    if input.len() != n || !input.iter().all(u8::is_ascii_digit) {
        return Err(TotpError::Malformed {
            expected: digits.get(),
        });
    }

    let now = time_step(now_unix_secs);
    let d = u64::from(params.discrepancy);
    let first = now.saturating_sub(d);
    let last = now.saturating_add(d);

    let mut fresh: Option<u64> = None;
    let mut matched_used = false;
    for step in first..=last {
        let expected = code_bytes(hotp_value(secret, step, params.algorithm, digits), digits);
        let is_match: bool = expected[..n].ct_eq(input).into();
        let is_fresh = last_used_step.is_none_or(|used| step > used);
        if is_match && is_fresh {
            fresh = Some(step);
        } else if is_match {
            matched_used = true;
        }
    }
    match fresh {
        Some(step) => Ok(Verified { step }),
        None if matched_used => Err(TotpError::Reused),
        None => Err(TotpError::Invalid),
    }
}

/// A new random secret of [`SECRET_LEN`] (20) bytes from the operating system's CSPRNG.
///
/// Panics only if the OS random source fails, which on supported platforms does not happen.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_LEN];
    rand::rngs::OsRng
        .try_fill_bytes(&mut secret)
        .expect("the OS random number generator failed");
    secret
}

/// RFC 4648 base32 (alphabet `A-Z2-7`) without `=` padding, as authenticator apps expect.
pub fn base32_secret(secret: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(secret.len().div_ceil(5) * 8);
    let mut buffer: u16 = 0;
    let mut bits: u32 = 0;
    for &byte in secret {
        buffer = (buffer << 8) | u16::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[usize::from((buffer >> bits) & 0x1f)]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(
            ALPHABET[usize::from((buffer << (5 - bits)) & 0x1f)],
        ));
    }
    out
}

/// Percent-encodes everything except RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`), as
/// UTF-8 bytes with upper-case hex; a space becomes `%20` (never `+`).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// The Key Uri (Google Authenticator "Key Uri Format") to show as a QR code at enrolment:
/// `otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30`.
///
/// Issuer and account are percent-encoded (UTF-8, `%20` for spaces); the `:` between them is
/// literal. The format forbids a colon inside either name, and some apps split the label at an
/// encoded `%3A` too, so callers should avoid colons in the issuer (the `issuer=` parameter, which
/// modern apps prefer, stays unambiguous). The secret is base32 without padding.
pub fn otpauth_uri(
    issuer: &str,
    account: &str,
    secret: &[u8],
    alg: Algorithm,
    digits: Digits,
    period: u32,
) -> String {
    let issuer = percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm={alg}&digits={digits}&period={period}",
        account = percent_encode(account),
        secret = base32_secret(secret),
        alg = alg.uri_name(),
        digits = digits.get(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::process::Command;

    // --- Allocation counter: counts bytes allocated by the current thread, to prove that huge inputs
    // are refused without proportional allocation. Thread-local so parallel tests do not interfere.
    struct Counting;
    thread_local! {
        static ALLOCATED: Cell<usize> = const { Cell::new(0) };
    }
    unsafe impl std::alloc::GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
            let _ = ALLOCATED.try_with(|a| a.set(a.get() + layout.size()));
            unsafe { std::alloc::System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
            unsafe { std::alloc::System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(
            &self,
            ptr: *mut u8,
            layout: std::alloc::Layout,
            new_size: usize,
        ) -> *mut u8 {
            let _ = ALLOCATED.try_with(|a| a.set(a.get() + new_size));
            unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
        }
    }
    #[global_allocator]
    static GLOBAL: Counting = Counting;

    fn allocated() -> usize {
        ALLOCATED.with(|a| a.get())
    }

    const SEED20: &[u8] = b"12345678901234567890";
    const SEED32: &[u8] = b"12345678901234567890123456789012";
    const SEED64: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    fn digits(n: u32) -> Digits {
        Digits::new(n).unwrap()
    }

    fn params(d: u32) -> Params {
        Params::new(Algorithm::Sha1, Digits::default(), d).unwrap()
    }

    /// RFC 4226 §5.3 exactly as written (31-bit), as a reference for the ≤ 9 digit path.
    fn classic_hotp(secret: &[u8], counter: u64, alg: Algorithm, digits: u32) -> String {
        let (tag, len) = hmac_tag(alg, secret, &counter.to_be_bytes());
        let o = usize::from(tag[len - 1] & 0xf);
        let bin = (u32::from(tag[o] & 0x7f) << 24)
            | (u32::from(tag[o + 1]) << 16)
            | (u32::from(tag[o + 2]) << 8)
            | u32::from(tag[o + 3]);
        format!(
            "{:0width$}",
            bin % 10u32.pow(digits),
            width = digits as usize
        )
    }

    #[test]
    fn totp_rfc6238_appendix_b() {
        let table: &[(u64, &str, &str, &str)] = &[
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for &(t, sha1, sha256, sha512) in table {
            let step = time_step(t);
            assert_eq!(
                generate(SEED20, step, Algorithm::Sha1, digits(8)),
                sha1,
                "SHA1 T={t}"
            );
            assert_eq!(
                generate(SEED32, step, Algorithm::Sha256, digits(8)),
                sha256,
                "SHA256 T={t}"
            );
            assert_eq!(
                generate(SEED64, step, Algorithm::Sha512, digits(8)),
                sha512,
                "SHA512 T={t}"
            );
            // And verify accepts them at that time.
            for (seed, alg, code) in [
                (SEED20, Algorithm::Sha1, sha1),
                (SEED32, Algorithm::Sha256, sha256),
                (SEED64, Algorithm::Sha512, sha512),
            ] {
                let p = Params::new(alg, digits(8), 0).unwrap();
                assert_eq!(verify(seed, code, t, &p, None), Ok(Verified { step }));
            }
        }
    }

    #[test]
    fn totp_rfc4226_appendix_d() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(
                hotp(SEED20, counter as u64, Algorithm::Sha1, digits(6)),
                *code,
                "counter {counter}"
            );
        }
    }

    #[test]
    fn totp_up_to_nine_digits_equals_classic_31_bit() {
        let secrets: [&[u8]; 4] = [SEED20, SEED32, SEED64, b"\x00\xff short"];
        for secret in secrets {
            for alg in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
                for d in 4..=9 {
                    for counter in (0..200u64).chain([u64::MAX, 1 << 40]) {
                        assert_eq!(
                            hotp(secret, counter, alg, digits(d)),
                            classic_hotp(secret, counter, alg, d)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn totp_ten_to_twelve_digits_use_full_range() {
        for alg in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
            for d in 10..=12u32 {
                let mut leading = [0u32; 10];
                let mut above_31_bits = 0;
                for counter in 0..3000u64 {
                    let code = hotp(SEED20, counter, alg, digits(d));
                    assert_eq!(code.len(), d as usize);
                    assert!(code.bytes().all(|b| b.is_ascii_digit()));
                    leading[usize::from(code.as_bytes()[0] - b'0')] += 1;
                    if code.parse::<u64>().unwrap() > u64::from(u32::MAX >> 1) {
                        above_31_bits += 1;
                    }
                    // Round trip through verify.
                    let p = Params::new(alg, digits(d), 0).unwrap();
                    assert_eq!(
                        verify(SEED20, &code, counter * 30 + 7, &p, None),
                        Ok(Verified { step: counter })
                    );
                }
                // Uniform over 10^d: each leading digit (including 0, i.e. zero padding) ≈ 300 times.
                for (digit, count) in leading.iter().enumerate() {
                    assert!(
                        (200..=400).contains(count),
                        "{alg:?} {d} digits: leading {digit} seen {count} times"
                    );
                }
                assert!(above_31_bits > 2000, "{alg:?} {d}: codes stuck below 2^31");
            }
        }
        // Zero padding, checked directly.
        let padded = code_bytes(42, digits(12));
        assert_eq!(&padded[..12], b"000000000042");
    }

    #[test]
    fn totp_sha1_offset_cap_stays_inside_tag() {
        // Any nibble, including 15, must not read past SHA-1's 20 bytes: exercise many counters.
        for counter in 0..5000u64 {
            let _ = hotp(b"k", counter, Algorithm::Sha1, digits(12));
        }
    }

    #[test]
    fn totp_matches_oathtool() {
        let available = Command::new("oathtool")
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            available,
            "oathtool is not installed; install it (Debian: `apt-get install -y oathtool`) to run this cross-check"
        );
        let secrets: [&[u8]; 3] = [SEED20, SEED32, b"\x8a\x01\xff\x00Homedesk-secret-key!"];
        let times: [(u64, &str); 3] = [
            (1767225600, "2026-01-01 00:00:00 UTC"),
            (1111111109, "2005-03-18 01:58:29 UTC"),
            (4102444799, "2099-12-31 23:59:59 UTC"),
        ];
        for secret in secrets {
            for (mode, alg) in [
                ("sha1", Algorithm::Sha1),
                ("sha256", Algorithm::Sha256),
                ("sha512", Algorithm::Sha512),
            ] {
                for d in [6u32, 7, 8] {
                    for (unix, human) in times {
                        let out = Command::new("oathtool")
                            .arg(format!("--totp={mode}"))
                            .arg(format!("--digits={d}"))
                            .arg(format!("--now={human}"))
                            .arg(hex::encode(secret))
                            .output()
                            .expect("run oathtool");
                        assert!(
                            out.status.success(),
                            "oathtool failed: {}",
                            String::from_utf8_lossy(&out.stderr)
                        );
                        let theirs = String::from_utf8(out.stdout).unwrap().trim().to_string();
                        let ours = generate(secret, time_step(unix), alg, digits(d));
                        assert_eq!(ours, theirs, "{mode} {d} digits at {human}");
                    }
                }
            }
        }
    }

    #[test]
    fn totp_skew_edges() {
        let now = 1_767_225_615; // mid-step
        let step = time_step(now);
        for d in [0u32, 1, 2, 10, MAX_DISCREPANCY] {
            let p = params(d);
            let d = u64::from(d);
            for s in [step - d, step + d] {
                let code = generate(SEED20, s, Algorithm::Sha1, digits(6));
                assert_eq!(
                    verify(SEED20, &code, now, &p, None),
                    Ok(Verified { step: s }),
                    "d={d} s={s}"
                );
            }
            for s in [step - d - 1, step + d + 1] {
                let code = generate(SEED20, s, Algorithm::Sha1, digits(6));
                // Skip the (1e-6) case where a neighbouring step happens to share the code.
                let collides = (step - d..=step + d)
                    .any(|t| generate(SEED20, t, Algorithm::Sha1, digits(6)) == code);
                if !collides {
                    assert_eq!(
                        verify(SEED20, &code, now, &p, None),
                        Err(TotpError::Invalid),
                        "d={d} s={s}"
                    );
                }
            }
        }
        // Step boundaries with discrepancy 0: last second of a step and first of the next.
        let p0 = params(0);
        let start = step * STEP_SECONDS;
        let code = generate(SEED20, step, Algorithm::Sha1, digits(6));
        assert!(verify(SEED20, &code, start, &p0, None).is_ok());
        assert!(verify(SEED20, &code, start + 29, &p0, None).is_ok());
        assert_eq!(
            verify(SEED20, &code, start + 30, &p0, None),
            Err(TotpError::Invalid)
        );
        assert_eq!(
            verify(SEED20, &code, start - 1, &p0, None),
            Err(TotpError::Invalid)
        );
        // Near the epoch and the end of time: the window is clamped, no overflow.
        let c0 = generate(SEED20, 0, Algorithm::Sha1, digits(6));
        assert_eq!(
            verify(SEED20, &c0, 5, &params(3), None),
            Ok(Verified { step: 0 })
        );
        let cmax = generate(SEED20, u64::MAX / 30, Algorithm::Sha1, digits(6));
        assert!(verify(SEED20, &cmax, u64::MAX, &params(3), None).is_ok());
    }

    #[test]
    fn totp_single_use() {
        let now = 2_000_000_000;
        let step = time_step(now);
        let p = params(1);
        let code = generate(SEED20, step, Algorithm::Sha1, digits(6));
        let ok = verify(SEED20, &code, now, &p, None).unwrap();
        assert_eq!(ok.step, step);
        // Same code again after storing the step: refused.
        assert_eq!(
            verify(SEED20, &code, now, &p, Some(ok.step)),
            Err(TotpError::Reused)
        );
        assert_eq!(
            verify(SEED20, &code, now + 30, &p, Some(ok.step)),
            Err(TotpError::Reused)
        );
        // An earlier step (still inside the window) is refused too.
        let earlier = generate(SEED20, step - 1, Algorithm::Sha1, digits(6));
        assert_eq!(
            verify(SEED20, &earlier, now, &p, Some(ok.step)),
            Err(TotpError::Reused)
        );
        // A later step is accepted, and then it becomes the last used.
        let later = generate(SEED20, step + 1, Algorithm::Sha1, digits(6));
        assert_eq!(
            verify(SEED20, &later, now, &p, Some(ok.step)),
            Ok(Verified { step: step + 1 })
        );
        assert_eq!(
            verify(SEED20, &later, now, &p, Some(step + 1)),
            Err(TotpError::Reused)
        );
        // A wrong code stays Invalid regardless of the last used step.
        let wrong = if code == "000000" { "000001" } else { "000000" };
        assert_eq!(
            verify(SEED20, wrong, now, &params(0), Some(step - 5)),
            Err(TotpError::Invalid)
        );
    }

    #[test]
    fn totp_malformed_inputs() {
        let now = 1_234_567_890;
        let p = params(1);
        let good = generate(SEED20, time_step(now), Algorithm::Sha1, digits(6));
        assert!(verify(SEED20, &good, now, &p, None).is_ok());
        let bad = [
            String::new(),
            " ".into(),
            format!(" {good}"),
            format!("{good} "),
            format!("{good}\n"),
            format!("\t{good}"),
            format!("{} {}", &good[..3], &good[3..]), // single inner space: refused
            format!("{} {}", &good[..2], &good[3..]), // 6 long, space inside
            format!("+{}", &good[1..]),
            format!("-{}", &good[1..]),
            format!("+{good}"),
            "١٢٣٤٥٦".into(),       // Arabic-Indic digits
            "１２３４５６".into(), // full-width digits
            format!("{}１", &good[..5]),
            format!("{}\u{0}", &good[..5]),
            "12345".into(),
            "1234567".into(),
            "12a456".into(),
            "0x1234".into(),
            "1e5000".into(),
            "12345\u{200b}".into(),
        ];
        for input in &bad {
            let err = verify(SEED20, input, now, &p, None).unwrap_err();
            assert_eq!(err, TotpError::Malformed { expected: 6 }, "{input:?}");
        }
        // Huge input: refused by length before touching it, with no allocation proportional to it.
        let huge = "1".repeat(10 * 1024 * 1024);
        let before = allocated();
        assert_eq!(
            verify(SEED20, &huge, now, &p, None),
            Err(TotpError::Malformed { expected: 6 })
        );
        assert_eq!(
            allocated() - before,
            0,
            "verify allocated while refusing a 10 MB input"
        );
        let probe = vec![0u8; 4096]; // the counter does see this thread's allocations
        assert!(allocated() - before >= 4096);
        drop(probe);
        // A valid code with one extra character appended is still refused.
        assert!(verify(SEED20, &format!("{good}0"), now, &p, None).is_err());
    }

    #[test]
    fn totp_verify_does_not_allocate() {
        let p = params(MAX_DISCREPANCY);
        let before = allocated();
        let _ = verify(SEED20, "123456", 1_767_225_600, &p, None);
        assert_eq!(allocated() - before, 0);
    }

    #[test]
    fn totp_digits_and_params_validation() {
        for n in [0u32, 1, 3, 13, 20, u32::MAX] {
            assert_eq!(Digits::new(n), Err(TotpError::BadDigits { got: n }));
        }
        for n in 4..=12 {
            assert_eq!(Digits::new(n).unwrap().get() as u32, n);
        }
        assert_eq!(Digits::default().get(), 6);
        assert!(Params::new(Algorithm::Sha1, Digits::default(), MAX_DISCREPANCY).is_ok());
        assert_eq!(
            Params::new(Algorithm::Sha1, Digits::default(), MAX_DISCREPANCY + 1),
            Err(TotpError::BadDiscrepancy { got: 481 })
        );
        let d = Params::default();
        assert_eq!(
            (d.algorithm(), d.digits().get(), d.discrepancy()),
            (Algorithm::Sha1, 6, 1)
        );
        assert_eq!(Algorithm::default(), Algorithm::Sha1);
    }

    #[test]
    fn totp_errors_never_show_code() {
        let now = 1_234_567_890;
        let p = params(0);
        let good = generate(SEED20, time_step(now), Algorithm::Sha1, digits(6));
        for (input, last) in [
            (good.as_str(), Some(time_step(now))),
            ("999999", None),
            ("12 345", None),
        ] {
            if let Err(e) = verify(SEED20, input, now, &p, last) {
                let shown = format!("{e} {e:?}");
                assert!(!shown.contains(input), "{shown}");
                assert!(!shown.contains("1234567890"), "{shown}");
            }
        }
        assert_eq!(
            TotpError::Reused.to_string(),
            "this code has already been used; wait for the next one"
        );
    }

    #[test]
    fn totp_base32_rfc4648_vectors() {
        let vectors: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "MY"),
            (b"fo", "MZXQ"),
            (b"foo", "MZXW6"),
            (b"foob", "MZXW6YQ"),
            (b"fooba", "MZXW6YTB"),
            (b"foobar", "MZXW6YTBOI"),
        ];
        for (input, expected) in vectors {
            assert_eq!(base32_secret(input), expected);
        }
        assert_eq!(base32_secret(SEED20), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(base32_secret(&[0xff; 5]), "77777777");
        assert_eq!(base32_secret(&[0x00; 5]), "AAAAAAAA");
    }

    #[test]
    fn totp_base32_matches_oathtool() {
        // oathtool -b decodes base32: our encoding of a random secret must give the same codes.
        let secret = new_secret();
        let out = Command::new("oathtool")
            .args(["--totp", "-b", "--now=2026-01-01 00:00:00 UTC"])
            .arg(base32_secret(&secret))
            .output()
            .expect(
                "oathtool is not installed; install it (Debian: `apt-get install -y oathtool`)",
            );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert_eq!(
            theirs,
            generate(&secret, time_step(1767225600), Algorithm::Sha1, digits(6))
        );
    }

    #[test]
    fn totp_new_secret() {
        let a = new_secret();
        let b = new_secret();
        assert!(a.len() >= 20);
        assert_eq!(a.len(), SECRET_LEN);
        assert_ne!(a, b);
        assert_ne!(a, vec![0u8; SECRET_LEN]);
        assert_eq!(base32_secret(&a).len(), 32);
    }

    #[test]
    fn totp_otpauth_uri() {
        assert_eq!(
            otpauth_uri(
                "Homedesk",
                "alice@example.com",
                SEED20,
                Algorithm::Sha1,
                Digits::default(),
                30
            ),
            "otpauth://totp/Homedesk:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Homedesk&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(
            otpauth_uri("ACME Co: Büro", "José Müller:ops", b"foobar", Algorithm::Sha256, digits(8), 30),
            "otpauth://totp/ACME%20Co%3A%20B%C3%BCro:Jos%C3%A9%20M%C3%BCller%3Aops?secret=MZXW6YTBOI\
             &issuer=ACME%20Co%3A%20B%C3%BCro&algorithm=SHA256&digits=8&period=30"
        );
        let uri = otpauth_uri("a+b&c=d?e/f#g", "x", b"f", Algorithm::Sha512, digits(7), 60);
        assert_eq!(
            uri,
            "otpauth://totp/a%2Bb%26c%3Dd%3Fe%2Ff%23g:x?secret=MY&issuer=a%2Bb%26c%3Dd%3Fe%2Ff%23g\
             &algorithm=SHA512&digits=7&period=60"
        );
        assert!(!uri.contains(' ') && uri.is_ascii());
        assert_eq!(percent_encode("AZaz09-._~"), "AZaz09-._~");
    }
}

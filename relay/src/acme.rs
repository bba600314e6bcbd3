//! Policy of the free HTTPS certificate, without I/O: which names can get one, when to renew, and
//! how a failure is told to the administrator (error codes 801–806, as in the reference product).
//!
//! Kept apart from the ACME conversation ([`crate::acme_client`]) so that these decisions are plain
//! functions with unit tests: the internal-name check, the renewal time (a third of the lifetime
//! left, or the CA's ARI window) and the mapping of ACME problems to codes and human messages.

use std::net::IpAddr;
use std::time::Duration;

/// Let's Encrypt's production directory: the default CA.
pub const LETS_ENCRYPT_PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// How often the serving relay looks at the certificate's renewal time (also once at start).
pub const CHECK_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Where an attempt failed; each stage has its own error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Registering (or loading) the ACME account: 801.
    Account,
    /// Reading the terms-of-service URL from the CA's directory: 802.
    TermsUrl,
    /// The terms the administrator accepted are not the CA's current ones: 803.
    TermsAgreement,
    /// Proving control of the domain for a new certificate (804) or at renewal (805).
    Validation { renewal: bool },
    /// Issuing or installing the certificate: 806.
    Issuance,
}

impl Stage {
    pub fn code(self) -> u16 {
        match self {
            Stage::Account => 801,
            Stage::TermsUrl => 802,
            Stage::TermsAgreement => 803,
            Stage::Validation { renewal: false } => 804,
            Stage::Validation { renewal: true } => 805,
            Stage::Issuance => 806,
        }
    }
}

/// A failed attempt: the code and a sentence for the administrator; `detail` (the CA's own words)
/// goes to the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (error {code})")]
pub struct AcmeFailure {
    pub code: u16,
    pub message: String,
    pub detail: String,
}

impl AcmeFailure {
    pub fn new(stage: Stage, message: impl Into<String>, detail: impl Into<String>) -> Self {
        AcmeFailure {
            code: stage.code(),
            message: message.into(),
            detail: detail.into(),
        }
    }
}

/// Turns what went wrong (the ACME problem type, if the CA sent one, and its detail) into a failure
/// with a message that says what to do.
pub fn failure(
    stage: Stage,
    domain: &str,
    problem_type: Option<&str>,
    detail: &str,
) -> AcmeFailure {
    let mut kind = problem_type.map(|t| t.strip_prefix("urn:ietf:params:acme:error:").unwrap_or(t));
    if kind == Some("connection") && names_a_dns_failure(detail) {
        // Some CAs (pebble) report a name that does not resolve as a connection problem.
        kind = Some("dns");
    }
    let message = match (stage, kind) {
        (_, Some("rateLimited")) => "The certificate authority's rate limit was reached: try again later.".to_owned(),
        (_, Some("userActionRequired")) => {
            "The certificate authority requires an action: its terms of service may have changed. \
             Review and accept them again."
                .to_owned()
        }
        (_, Some("rejectedIdentifier" | "malformed")) if matches!(stage, Stage::Validation { .. }) => {
            format!("The certificate authority refuses to issue a certificate for {domain}.")
        }
        (_, Some("caa")) => {
            format!("A CAA record of {domain} does not allow this certificate authority to issue for it.")
        }
        (Stage::Account, Some("invalidContact" | "unsupportedContact")) => {
            "The certificate authority refused the email address: enter a valid address.".to_owned()
        }
        (Stage::Account, _) => "Could not register an account with the certificate authority.".to_owned(),
        (Stage::TermsUrl, _) => {
            "Could not read the terms of service from the certificate authority's directory: check that this \
             server can reach the CA (HTTPS, outbound)."
                .to_owned()
        }
        (Stage::TermsAgreement, _) => {
            "The certificate authority's terms of service changed: review the new terms and accept them.".to_owned()
        }
        (Stage::Validation { .. }, Some("dns")) => {
            format!(
                "The certificate authority could not find {domain} in the DNS: create an A (or AAAA) record \
                     pointing to this server's public address."
            )
        }
        (Stage::Validation { .. }, Some("connection")) => format!(
            "The certificate authority could not connect to {domain} on port 80: forward port 80 to this \
             relay's HTTP port and allow it in the firewall."
        ),
        (Stage::Validation { .. }, Some("unauthorized" | "incorrectResponse")) => format!(
            "The certificate authority reached {domain} on port 80 but got a wrong answer: port 80 must reach \
             this relay, not another server."
        ),
        (Stage::Validation { .. }, _) => format!("The certificate authority could not validate {domain}."),
        (Stage::Issuance, _) => format!("The certificate authority did not issue the certificate for {domain}."),
    };
    AcmeFailure::new(stage, message, detail)
}

fn names_a_dns_failure(detail: &str) -> bool {
    let detail = detail.to_ascii_lowercase();
    [
        "could not resolve",
        "nxdomain",
        "no valid a records",
        "no such host",
        "servfail",
    ]
    .iter()
    .any(|s| detail.contains(s))
}

/// Why a name cannot get a free certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DomainRefusal(pub String);

/// Suffixes that never resolve in the public DNS (RFC 6761, RFC 8375, ICANN's .internal, habits).
const INTERNAL_SUFFIXES: &[&str] = &[
    "localhost",
    "local",
    "localdomain",
    "internal",
    "intranet",
    "lan",
    "home",
    "corp",
    "private",
    "test",
    "example",
    "invalid",
    "onion",
    "home.arpa",
    "arpa",
];

/// Checks that `input` is a public DNS name a CA can validate; returns it normalised (lowercase,
/// no trailing dot). IP addresses, single labels and internal suffixes are refused with a reason.
pub fn check_domain(input: &str) -> Result<String, DomainRefusal> {
    let name = input.trim().trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return Err(DomainRefusal(
            "Enter the domain name users type to reach the portal.".into(),
        ));
    }
    let unbracketed = name.trim_start_matches('[').trim_end_matches(']');
    if unbracketed.parse::<IpAddr>().is_ok() {
        return Err(DomainRefusal(format!(
            "{name} is an IP address: a free certificate needs a public domain name (such as desk.example.com) \
             that points to this server."
        )));
    }
    if name.contains('*') {
        return Err(DomainRefusal(format!(
            "{name} is a wildcard: a free certificate is issued for one name, validated over HTTP."
        )));
    }
    let invalid = || {
        DomainRefusal(format!(
            "{name} is not a valid domain name (letters, digits and hyphens, labels separated by dots)."
        ))
    };
    if name.len() > 253 {
        return Err(invalid());
    }
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        let valid_chars = label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if label.is_empty()
            || label.len() > 63
            || !valid_chars
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(invalid());
        }
    }
    if labels.len() < 2 {
        return Err(DomainRefusal(format!(
            "{name} is an internal name: a free certificate needs a public domain name (such as desk.example.com) \
             that points to this server."
        )));
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid());
    }
    if let Some(suffix) = INTERNAL_SUFFIXES
        .iter()
        .find(|s| name.ends_with(&format!(".{s}")))
    {
        return Err(DomainRefusal(format!(
            "{name} is an internal name (.{suffix}): public certificate authorities only certify names of the \
             public DNS."
        )));
    }
    Ok(name)
}

/// A plausible email address for the ACME account (the CA checks it properly).
pub fn check_email(input: &str) -> Result<String, AcmeFailure> {
    let email = input.trim();
    let plausible = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
    }) && email.matches('@').count() == 1
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'));
    if plausible {
        Ok(email.to_owned())
    } else {
        Err(AcmeFailure::new(
            Stage::Account,
            format!("{email:?} is not a valid email address: the certificate authority writes to it about expiry."),
            "",
        ))
    }
}

/// When a certificate valid from `not_before` to `not_after` (Unix ms) is due for renewal: once a
/// third of its lifetime is left (day 60 of 90, ~43 of 64, 30 of 45).
pub fn third_left(not_before: i64, not_after: i64) -> i64 {
    let lifetime = not_after.saturating_sub(not_before).max(0);
    not_after - lifetime / 3
}

/// The renewal time: inside the CA's ARI window when it offers one (`fraction` in 0..=1 picks the
/// point, random per RFC 9773 so that clients spread out), else [`third_left`]. A window that ends
/// before it starts is ignored.
pub fn renewal_time(
    not_before: i64,
    not_after: i64,
    ari_window: Option<(i64, i64)>,
    fraction: f64,
) -> i64 {
    match ari_window {
        Some((start, end)) if end >= start => {
            let span = (end - start) as f64;
            start + (span * fraction.clamp(0.0, 1.0)) as i64
        }
        _ => third_left(not_before, not_after),
    }
}

/// Whether a relay should check the renewal now. A check is due once `next_check_at` has passed (or
/// when none is planned). At its start a relay checks anyway (it may have been down, or the
/// certificate may have changed, since the check was planned) — unless a relay claimed a check less
/// than `attempt_timeout` ago, which may still be running: a claim plans the next check a full
/// [`CHECK_INTERVAL`] after the moment of claiming, so a `next_check_at` further ahead than
/// `CHECK_INTERVAL - attempt_timeout` marks such a recent claim. Without that exception, relays
/// starting while another renews would each see the old certificate still due and order again.
pub fn check_due(
    now: i64,
    next_check_at: Option<i64>,
    starting: bool,
    attempt_timeout: Duration,
) -> bool {
    let Some(at) = next_check_at else {
        return true;
    };
    let recent_claim =
        (CHECK_INTERVAL.saturating_sub(attempt_timeout).as_millis() as i64).saturating_add(now);
    at <= now || (starting && at <= recent_claim)
}

/// When to look again: at the renewal time if it comes before the next daily check.
pub fn next_check(now: i64, renew_at: i64) -> i64 {
    let daily = now.saturating_add(CHECK_INTERVAL.as_millis() as i64);
    daily.min(renew_at.max(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn a_start_checks_unless_a_check_was_just_claimed() {
        let (now, hour) = (1_000 * DAY, 3_600_000);
        let attempt = Duration::from_secs(180);
        // Running: only when planned.
        assert!(check_due(now, None, false, attempt));
        assert!(check_due(now, Some(now), false, attempt));
        assert!(!check_due(now, Some(now + 23 * hour), false, attempt));
        // Starting: also when the plan lies ahead (a day's check made before the restart)...
        assert!(check_due(now, Some(now + 23 * hour), true, attempt));
        assert!(check_due(now, Some(now + 2 * hour), true, attempt));
        assert!(check_due(now, Some(now + DAY - 181_000), true, attempt));
        // ...but not right after another relay claimed a check that may still be running.
        assert!(!check_due(now, Some(now + DAY - 179_000), true, attempt));
        assert!(!check_due(now, Some(now + DAY), true, attempt));
    }

    #[test]
    fn codes_follow_the_stages() {
        let codes: Vec<u16> = [
            Stage::Account,
            Stage::TermsUrl,
            Stage::TermsAgreement,
            Stage::Validation { renewal: false },
            Stage::Validation { renewal: true },
            Stage::Issuance,
        ]
        .iter()
        .map(|s| s.code())
        .collect();
        assert_eq!(codes, [801, 802, 803, 804, 805, 806]);
    }

    #[test]
    fn problems_become_advice() {
        let v = Stage::Validation { renewal: false };
        let connection = failure(
            v,
            "desk.example.com",
            Some("urn:ietf:params:acme:error:connection"),
            "timeout",
        );
        assert_eq!(connection.code, 804);
        assert!(
            connection.message.contains("port 80"),
            "{}",
            connection.message
        );
        assert_eq!(connection.detail, "timeout");
        let renewal = failure(
            Stage::Validation { renewal: true },
            "d.example.com",
            Some("dns"),
            "NXDOMAIN",
        );
        assert_eq!(renewal.code, 805);
        assert!(renewal.message.contains("DNS"), "{}", renewal.message);
        let unresolved = failure(
            v,
            "d.example.com",
            Some("connection"),
            "Get \"http://d/\": could not resolve URL",
        );
        assert!(unresolved.message.contains("DNS"), "{}", unresolved.message);
        let wrong = failure(
            v,
            "d.example.com",
            Some("urn:ietf:params:acme:error:unauthorized"),
            "",
        );
        assert!(wrong.message.contains("wrong answer"));
        let contact = failure(
            Stage::Account,
            "",
            Some("urn:ietf:params:acme:error:invalidContact"),
            "",
        );
        assert_eq!(contact.code, 801);
        assert!(contact.message.contains("email"));
        let limited = failure(
            Stage::Issuance,
            "d.example.com",
            Some("urn:ietf:params:acme:error:rateLimited"),
            "",
        );
        assert_eq!(limited.code, 806);
        assert!(limited.message.contains("rate limit"));
        assert_eq!(failure(Stage::TermsUrl, "", None, "refused").code, 802);
        assert_eq!(failure(Stage::TermsAgreement, "", None, "").code, 803);
        assert_eq!(
            failure(
                Stage::Validation { renewal: false },
                "x.example.com",
                Some("rejectedIdentifier"),
                ""
            )
            .code,
            804
        );
        assert!(failure(Stage::Issuance, "x.example.com", None, "")
            .to_string()
            .ends_with(" (error 806)"));
    }

    #[test]
    fn public_names_pass_normalised() {
        assert_eq!(
            check_domain(" Desk.Example.COM. ").unwrap(),
            "desk.example.com"
        );
        assert_eq!(
            check_domain("xn--bcher-kva.example.org").unwrap(),
            "xn--bcher-kva.example.org"
        );
        assert_eq!(
            check_domain("a-b.c.homedesk-ci.net").unwrap(),
            "a-b.c.homedesk-ci.net"
        );
    }

    #[test]
    fn addresses_and_internal_names_are_refused() {
        for ip in [
            "192.168.1.10",
            "10.0.0.1",
            "::1",
            "[2001:db8::1]",
            "127.0.0.1",
        ] {
            let refusal = check_domain(ip).unwrap_err().0;
            assert!(refusal.contains("IP address"), "{ip}: {refusal}");
        }
        for internal in [
            "server",
            "localhost",
            "desk.local",
            "nas.home.arpa",
            "pc.corp",
            "app.internal",
            "x.lan",
        ] {
            let refusal = check_domain(internal).unwrap_err().0;
            assert!(refusal.contains("internal name"), "{internal}: {refusal}");
        }
        for invalid in [
            "desk..example.com",
            "-desk.example.com",
            "desk_1.example.com",
            "a.b.123",
            "dé.example.com",
        ] {
            let refusal = check_domain(invalid).unwrap_err().0;
            assert!(
                refusal.contains("not a valid domain name"),
                "{invalid}: {refusal}"
            );
        }
        assert!(check_domain("*.example.com")
            .unwrap_err()
            .0
            .contains("wildcard"));
        assert!(check_domain("").is_err());
        assert!(check_domain(&format!("{}.com", "a.".repeat(130))).is_err());
    }

    #[test]
    fn emails_are_checked_loosely() {
        assert_eq!(
            check_email(" admin@example.com ").unwrap(),
            "admin@example.com"
        );
        for bad in [
            "",
            "admin",
            "admin@",
            "@example.com",
            "a@b",
            "a b@example.com",
            "a@@example.com",
            "a@b.com,c@d.com",
        ] {
            assert_eq!(check_email(bad).unwrap_err().code, 801, "{bad}");
        }
    }

    #[test]
    fn renewal_at_a_third_of_the_lifetime() {
        for (days, renew_day) in [(90, 60), (45, 30)] {
            assert_eq!(
                third_left(0, days * DAY),
                renew_day * DAY,
                "{days}-day certificate"
            );
        }
        let at = third_left(0, 64 * DAY);
        assert!(
            at > 42 * DAY && at < 43 * DAY,
            "64-day certificate renews on day ~42.7"
        );
        assert_eq!(third_left(10, 10), 10, "degenerate validity");
    }

    #[test]
    fn ari_window_wins_when_offered() {
        let (nb, na) = (0, 90 * DAY);
        assert_eq!(
            renewal_time(nb, na, Some((50 * DAY, 52 * DAY)), 0.0),
            50 * DAY
        );
        assert_eq!(
            renewal_time(nb, na, Some((50 * DAY, 52 * DAY)), 1.0),
            52 * DAY
        );
        assert_eq!(
            renewal_time(nb, na, Some((50 * DAY, 52 * DAY)), 0.5),
            51 * DAY
        );
        assert_eq!(
            renewal_time(nb, na, Some((50 * DAY, 52 * DAY)), 7.0),
            52 * DAY,
            "fraction clamped"
        );
        assert_eq!(
            renewal_time(nb, na, Some((52 * DAY, 50 * DAY)), 0.5),
            60 * DAY,
            "reversed window ignored"
        );
        assert_eq!(renewal_time(nb, na, None, 0.5), 60 * DAY);
    }

    #[test]
    fn checks_daily_or_at_the_renewal_time() {
        assert_eq!(next_check(0, 60 * DAY), DAY);
        assert_eq!(next_check(0, DAY / 2), DAY / 2);
        assert_eq!(next_check(10 * DAY, 0), 10 * DAY, "overdue: now");
    }
}

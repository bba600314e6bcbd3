//! Which relay user a native client's `mstshash` cookie names, pure (no I/O).
//!
//! Why it exists: mstsc and xfreerdp put what the user typed into the cookie, in several shapes, and
//! mstsc cuts it to [`MSTSC_COOKIE_CHARS`] characters. Routing must never send someone to another
//! user's workstation, so every shape is matched against the relay's user names under one rule:
//! **route only when exactly one user can be meant; otherwise refuse**.
//!
//! - `alice` → the user `alice` (exact, case-sensitive, like the portal).
//! - `DOMAIN\alice` → `alice`. The domain is not used to pick a user (the relay has one namespace of
//!   user names); the workstation's NLA checks the domain and the password.
//! - `alice@corp.example` → the user of that exact name if one exists (user names may contain `@`),
//!   else `alice`.
//! - A cookie of exactly [`MSTSC_COOKIE_CHARS`] characters may be mstsc's truncation of a longer name
//!   (`CORP\alexa` of `CORP\alexandra`, `alexander` of `alexandersmith`, `bob@corp.` of
//!   `bob@corp.example`): every user the full text could have been is a candidate — names equal to it
//!   or starting with it (after the domain, for `DOMAIN\` cookies), and for `@` cookies the name before
//!   the `@`. One candidate → routed; none or several → refused (an administrator can give users
//!   names that stay unique in their first characters, or users use xfreerdp / an RDP file with the
//!   full name). So `alexander` is refused while both `alexander` and `alexandersmith` exist.

/// mstsc writes at most this many characters of the user name into the cookie.
pub const MSTSC_COOKIE_CHARS: usize = 9;

/// The routing decision for one cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Exactly this user is meant.
    User(String),
    /// No user matches.
    Unknown,
    /// A possibly truncated cookie that fits several users (refused).
    Ambiguous(Vec<String>),
}

/// Whether the cookie may be mstsc's truncation of a longer name.
pub fn may_be_truncated(cookie: &str) -> bool {
    cookie.chars().count() == MSTSC_COOKIE_CHARS
}

/// The user names a lookup needs when the cookie is not truncated (exact names only).
pub fn exact_names(cookie: &str) -> Vec<String> {
    let mut names = vec![cookie.to_owned()];
    if let Some((_, name)) = cookie.rsplit_once('\\') {
        names.push(name.to_owned());
    } else if let Some((name, _)) = cookie.split_once('@') {
        names.push(name.to_owned());
    }
    names.retain(|n| !n.is_empty());
    names.dedup();
    names
}

/// Decides the route of `cookie` among `users` (the relay's user names: all of them for a possibly
/// truncated cookie, else at least those of [`exact_names`] that exist).
pub fn route<'a>(cookie: &str, users: impl IntoIterator<Item = &'a str>) -> Route {
    let users: Vec<&str> = users.into_iter().collect();
    let truncated = may_be_truncated(cookie);
    let after_domain = cookie.rsplit_once('\\').map(|(_, name)| name);
    let before_at = match after_domain {
        Some(_) => None,
        None => cookie.split_once('@').map(|(name, _)| name),
    };
    if !truncated {
        // The whole text first (a user name with '@'), then the name without its domain.
        let exact = [Some(cookie), after_domain, before_at]
            .into_iter()
            .flatten()
            .filter(|name| !name.is_empty())
            .find(|name| users.contains(name));
        return exact.map_or(Route::Unknown, |name| Route::User(name.to_owned()));
    }
    let mut candidates: Vec<String> = users
        .iter()
        .filter(|user| {
            let whole = user.starts_with(cookie);
            let domain =
                after_domain.is_some_and(|name| !name.is_empty() && user.starts_with(name));
            let upn = before_at.is_some_and(|name| !name.is_empty() && **user == name);
            whole || domain || upn
        })
        .map(|user| (*user).to_owned())
        .collect();
    candidates.sort();
    candidates.dedup();
    match candidates.len() {
        0 => Route::Unknown,
        1 => Route::User(candidates.remove(0)),
        _ => Route::Ambiguous(candidates),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERS: &[&str] = &[
        "alice",
        "bob",
        "bob@corp.example",
        "alexander",
        "alexandersmith",
        "christina",
        "christopher",
        "margaretha",
    ];

    fn route_of(cookie: &str) -> Route {
        route(cookie, USERS.iter().copied())
    }

    fn user(name: &str) -> Route {
        Route::User(name.to_owned())
    }

    #[test]
    fn plain_and_domain_qualified_names() {
        assert_eq!(route_of("alice"), user("alice"));
        assert_eq!(route_of("CORP\\alice"), user("alice"));
        assert_eq!(route_of("corp.example\\bob"), user("bob"));
        assert_eq!(route_of("alice@corp.example"), user("alice"));
        // Case-sensitive like the portal: "Alice" is nobody.
        assert_eq!(route_of("Alice"), Route::Unknown);
        assert_eq!(route_of("CORP\\mallory"), Route::Unknown);
        assert_eq!(route_of("CORP\\"), Route::Unknown);
        assert_eq!(route_of("@corp"), Route::Unknown);
    }

    #[test]
    fn a_user_name_with_an_at_sign_wins_over_its_prefix() {
        assert_eq!(route_of("bob@corp.example"), user("bob@corp.example"));
        assert_eq!(route_of("bob@other.example"), user("bob"));
    }

    #[test]
    fn truncated_cookies_route_only_when_one_user_fits() {
        // mstsc cut "margarethaX…"/"margaretha" to 9 characters: one user starts so.
        assert_eq!(route_of("margareth"), user("margaretha"));
        assert_eq!(route_of("CORP\\marg"), user("margaretha"));
        assert_eq!(route_of("CORP\\alic"), user("alice"));
        // "christina" is 9 characters and a user, but "christopher" does not start with it: routed.
        assert_eq!(route_of("christina"), user("christina"));
        // Both "alexander" and "alexandersmith" start with the cookie: refused, even though one
        // name is an exact match (it may be alexandersmith's truncated cookie).
        assert_eq!(
            route_of("alexander"),
            Route::Ambiguous(vec!["alexander".into(), "alexandersmith".into()])
        );
        assert_eq!(
            route_of("CORP\\chri"),
            Route::Ambiguous(vec!["christina".into(), "christopher".into()])
        );
        // "bob@corp." is the cut of "bob@corp.example" or means "bob": two users, refused.
        assert_eq!(
            route_of("bob@corp."),
            Route::Ambiguous(vec!["bob".into(), "bob@corp.example".into()])
        );
        assert_eq!(route_of("CORP\\zzzz"), Route::Unknown);
        assert_eq!(route_of("CORPORATE"), Route::Unknown);
    }

    #[test]
    fn exact_lookups_cover_every_shape() {
        assert_eq!(exact_names("alice"), ["alice"]);
        assert_eq!(exact_names("CORP\\alice"), ["CORP\\alice", "alice"]);
        assert_eq!(exact_names("a@b.c"), ["a@b.c", "a"]);
        assert!(may_be_truncated("CORP\\alic") && !may_be_truncated("CORP\\alice"));
    }
}

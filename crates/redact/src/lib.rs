//! ragchat-redact: how ragchat shows a URL that may carry secrets.
//!
//! Every URL ragchat prints, logs, puts in an error or serves on `/readyz` (store URLs,
//! the LLM endpoint) goes through [`redact_url`], so one rule decides what is hidden:
//!
//! - the userinfo (`user:password@`) becomes `***@`: a user name can be the secret
//!   itself (`https://TOKEN@host`), and a password always is;
//! - the value of every query parameter becomes `***`, except the few whose values are
//!   settings, never secrets ([`PUBLIC_QUERY_PARAMS`]): `?api-version=2024-06-01&key=***`;
//! - a fragment becomes `#***`.
//!
//! Scheme, host, port and path stay, so the URL still says where it points.
//!
//! This is a crate of its own because both `ragchat-memory` (store URLs) and
//! `ragchat-rag` (the LLM endpoint, in its errors and description) must redact, and
//! neither may depend on the other: the memory crate is usable without retrieval, and
//! retrieval must not pull in Redis and SQLite. A leaf crate with one dependency (`url`)
//! is the only place both can share without a cycle or a heavy dependency.

/// Query parameters whose values are shown: settings that carry no secret.
pub const PUBLIC_QUERY_PARAMS: &[&str] = &["api-version", "db", "protocol", "sslmode"];

/// What a hidden part is replaced with.
pub const HIDDEN: &str = "***";

/// The URL with its secrets hidden: userinfo, query values (but those of
/// [`PUBLIC_QUERY_PARAMS`]) and fragment (see the crate docs).
///
/// Works on the text rather than through a URL parser, and never fails: parsers
/// normalise what they print and refuse what they cannot read (cluster URLs with several
/// hosts, a password with a `#` in it), and what is shown must not depend on that. The
/// userinfo is everything before the last `@` that precedes the path, even past a `?` or
/// `#` (a password may hold those); the query and the fragment are read after it.
pub fn redact_url(url: &str) -> String {
    let prefix_len = match url.find("://") {
        Some(i) => i + 3,
        // `scheme:user@host` or a bare `user@host`: the scheme ends at the first `:`
        // that comes before any `@`.
        None => match (url.find(':'), url.find('@')) {
            (Some(colon), Some(at)) if colon < at => colon + 1,
            _ => 0,
        },
    };
    let (prefix, rest) = url.split_at(prefix_len);
    let authority_end = rest.find(['/', '\\']).unwrap_or(rest.len());
    let (userinfo, rest) = match rest[..authority_end].rfind('@') {
        Some(at) => (Some(HIDDEN), &rest[at..]),
        None => (None, rest),
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((head, _)) => (head, Some(HIDDEN)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((head, query)) => (head, Some(redact_query(query))),
        None => (rest, None),
    };
    let mut shown = String::with_capacity(url.len());
    shown.push_str(prefix);
    if let Some(hidden) = userinfo {
        shown.push_str(hidden);
    }
    shown.push_str(rest);
    if let Some(query) = query {
        shown.push('?');
        shown.push_str(&query);
    }
    if let Some(fragment) = fragment {
        shown.push('#');
        shown.push_str(fragment);
    }
    shown
}

/// `a=1&token=x&flag` -> `a=***&token=***&flag`: values hidden but those of
/// [`PUBLIC_QUERY_PARAMS`]; names kept when they read as names.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if is_public(name) => format!("{name}={value}"),
            Some((name, _)) if is_plain_name(name) => format!("{name}={HIDDEN}"),
            // A bare word can be a token too (`?SECRET`): keep only flag-like ones.
            None if is_plain_flag(pair) => pair.to_string(),
            _ => HIDDEN.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn is_public(name: &str) -> bool {
    PUBLIC_QUERY_PARAMS
        .iter()
        .any(|p| p.eq_ignore_ascii_case(name))
}

/// A parameter name (`api_key`, `X-Amz-Signature`), not something that could be a key.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A bare query word that reads as a flag (`insecure`, `tls`), not a token.
fn is_plain_flag(word: &str) -> bool {
    word.len() <= 16
        && word
            .chars()
            .all(|c| c.is_ascii_lowercase() || matches!(c, '-' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_hidden_whole() {
        assert_eq!(
            redact_url("redis://:secret@host:6379/1"),
            "redis://***@host:6379/1"
        );
        assert_eq!(redact_url("rediss://user:pw@h:6380"), "rediss://***@h:6380");
        assert_eq!(
            redact_url("https://TOKEN@api.example/v1"),
            "https://***@api.example/v1"
        );
        assert_eq!(redact_url("redis://:pw@[bad"), "redis://***@[bad");
        assert_eq!(
            redact_url("redis+cluster://:pw@h1:7000,h2:7001"),
            "redis+cluster://***@h1:7000,h2:7001"
        );
        assert_eq!(redact_url("http://a:b@c@host/p@q"), "http://***@host/p@q");
        assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
        assert_eq!(
            redact_url("sqlite:///var/lib/x.db"),
            "sqlite:///var/lib/x.db"
        );
        assert_eq!(redact_url("memory://"), "memory://");
        assert_eq!(redact_url(""), "");
    }

    #[test]
    fn query_values_are_hidden_but_settings() {
        assert_eq!(
            redact_url("http://u:p@h/v1?api-version=2024-06-01&token=s3cret"),
            "http://***@h/v1?api-version=2024-06-01&token=***"
        );
        assert_eq!(
            redact_url("redis+unix:///run/redis.sock?db=1&pass=s3cret"),
            "redis+unix:///run/redis.sock?db=1&pass=***"
        );
        assert_eq!(
            redact_url("unix:///r.sock?password=a=b&PROTOCOL=resp3"),
            "unix:///r.sock?password=***&PROTOCOL=resp3"
        );
        assert_eq!(redact_url("http://h/?sk-0123456789abcdef"), "http://h/?***");
        assert_eq!(
            redact_url("http://h/?insecure&key="),
            "http://h/?insecure&key=***"
        );
        assert_eq!(redact_url("http://h/p#access_token=x"), "http://h/p#***");
        assert_eq!(redact_url("http://h/p?a=1#f"), "http://h/p?a=***#***");
        // A password with `#` or `?` in it is still userinfo.
        assert_eq!(redact_url("redis://:pa#ss@host/0"), "redis://***@host/0");
        assert_eq!(redact_url("redis://:pa?ss@host"), "redis://***@host");
    }

    #[test]
    fn the_secret_never_shows_whatever_surrounds_it() {
        let secret = "Zq8Wn3Rt6Yp";
        for template in [
            "redis://:{S}@h",
            "redis://{S}@h",
            "redis://u:{S}@h/0?db=2",
            "http://h/v1?key={S}",
            "http://h/v1?{S}",
            "http://h/v1?a=1&b={S}&c",
            "weird:{S}@host",
            "no-scheme-{S}@host",
            "http://h#{S}",
            "rediss+cluster://u:{S}@a:1,b:2",
            "redis://:x#{S}@h",
            "redis://:x?{S}@h/1",
        ] {
            let url = template.replace("{S}", secret);
            let shown = redact_url(&url);
            assert!(!shown.contains(secret), "{url} -> {shown}");
        }
    }
}

//! Store-URL handling: `parse_store_url` (which opens nothing) and `redact_url` never
//! panic, and a password never shows in what they return.
//!
//! Every input is first given to both as it is (lossy UTF-8). Then a URL with a password
//! is built from it: `SCHEME://USER:PASSWORD@REST`, where the first byte picks SCHEME from
//! the schemes below (or takes it from the input), and the rest, split at `0xFF`, gives
//! USER, a suffix for PASSWORD, REST and that custom scheme. USER and the password cannot
//! contain the characters that end them (`@ / \ ? #`, and `:` for USER), so PASSWORD is
//! the URL's password by any reading; REST is anything.
//!
//! The check is differential: the URL is built twice, with passwords that differ only in
//! a leading token of the same length and kind of characters, and the redacted URLs, and
//! the error messages of `parse_store_url`, must be the same for both. What is shown thus
//! cannot depend on the password. (A plain "does not contain the token" check is not
//! sound: URL parsers drop tabs, lowercase and map hosts, so REST can spell the token.)

#![no_main]

use libfuzzer_sys::fuzz_target;
use ragchat_memory::store::{parse_store_url, redact_url};

/// The two leading tokens of the built passwords: same length, same kinds of characters.
const TOKENS: [&str; 2] = ["Pw7QzXk3Vd", "Hb4MwRj8Ts"];

const SCHEMES: [&str; 12] = [
    "redis",
    "rediss",
    "redis+cluster",
    "rediss+cluster",
    "memory",
    "sqlite",
    "unix",
    "redis+unix",
    "valkey",
    "http",
    "file",
    "ftp",
];

fuzz_target!(|data: &[u8]| {
    let whole = String::from_utf8_lossy(data);
    let _ = redact_url(&whole);
    let _ = parse_store_url(&whole);

    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.split(|&b| b == 0xFF).map(String::from_utf8_lossy);
    let mut next = || parts.next().unwrap_or_default().into_owned();
    let user = without(&next(), "@/\\?#:");
    let suffix = without(&next(), "@/\\?#");
    let tail = next();
    let custom = without(&next(), ":/");
    let scheme = SCHEMES
        .get(usize::from(pick))
        .map_or(custom.as_str(), |s| s);
    let [a, b] = TOKENS.map(|token| format!("{scheme}://{user}:{token}{suffix}@{tail}"));

    let (shown_a, shown_b) = (redact_url(&a), redact_url(&b));
    assert_eq!(
        shown_a, shown_b,
        "redact_url shows the password of {a:?} or {b:?}"
    );
    let (error_a, error_b) = (error_of(&a), error_of(&b));
    assert_eq!(
        error_a, error_b,
        "parse_store_url's error shows the password of {a:?} or {b:?}"
    );
});

/// The message of `parse_store_url`'s error, if it fails.
fn error_of(url: &str) -> Option<String> {
    parse_store_url(url).err().map(|e| e.to_string())
}

fn without(text: &str, banned: &str) -> String {
    text.chars().filter(|c| !banned.contains(*c)).collect()
}

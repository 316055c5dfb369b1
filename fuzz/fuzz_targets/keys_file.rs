//! The API keys file parser: `ApiKeys::parse` never panics, a byte order mark changes
//! nothing, and a file it accepts means what a plain reading of it says.
//!
//! Each input is parsed twice as text: as it is (lossy UTF-8), and lines built from its
//! pieces (split at `0xFF`, three pieces a line: key, user, options), which reach the
//! key, user and option checks far more often than random text does. For both:
//!
//! - parsing with a UTF-8 byte order mark in front gives the same keys, or the same
//!   error, as without;
//! - when the file is accepted, every line's first field given in clear is a key of
//!   its second field (`user_for`), hashes (`sha256:HEX`) are not keys themselves, the
//!   number of keys is the number of lines that hold one, and no user is reserved or an
//!   invalid id.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ragchat_server::auth::keys_file::{is_reserved_user, ApiKeys, HASH_PREFIX};

fuzz_target!(|data: &[u8]| {
    check(&String::from_utf8_lossy(data));
    check(&structured(data));
});

/// Lines of `KEY USER OPTIONS` from the input's pieces.
fn structured(data: &[u8]) -> String {
    let pieces: Vec<String> = data
        .split(|&b| b == 0xFF)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    pieces
        .chunks(3)
        .map(|line| line.join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn check(text: &str) {
    let path = Path::new("keys.txt");
    let parsed = ApiKeys::parse(text, path);
    // One mark is ignored; a second one would be part of the first key.
    let bare = text.strip_prefix('\u{feff}').unwrap_or(text);
    let with_bom = ApiKeys::parse(&format!("\u{feff}{bare}"), path);
    match (&parsed, &with_bom) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "a byte order mark changed the keys of {text:?}"),
        (Err(a), Err(b)) => assert_eq!(
            a.to_string(),
            b.to_string(),
            "a byte order mark changed the error for {text:?}"
        ),
        _ => panic!("a byte order mark changed whether {text:?} parses"),
    }
    let Ok(keys) = parsed else {
        return;
    };
    let mut lines_with_keys = 0;
    for line in bare.lines() {
        let content = line.split('#').next().unwrap_or("").trim();
        let fields: Vec<&str> = content.split_whitespace().collect();
        let [key, user, ..] = fields.as_slice() else {
            assert!(
                fields.is_empty(),
                "accepted a line with one field: {line:?}"
            );
            continue;
        };
        lines_with_keys += 1;
        assert!(!is_reserved_user(user), "accepted reserved user {user:?}");
        assert!(
            ragchat_memory::message::validate_id("user", user).is_ok(),
            "accepted invalid user {user:?}"
        );
        if key.starts_with(HASH_PREFIX) {
            assert_eq!(keys.user_for(key), None, "a hash line made {key:?} a key");
        } else {
            assert_eq!(
                keys.user_for(key),
                Some(*user),
                "{key:?} is not {user:?}'s key"
            );
        }
    }
    assert_eq!(keys.len(), lines_with_keys, "{bare:?}");
}

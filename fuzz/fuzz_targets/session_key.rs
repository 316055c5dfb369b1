//! Session-key validation: `SessionKey::new` and `validate_id` accept exactly the ids
//! that match `[A-Za-z0-9._-]{1,64}` and are not `.` or `..`, and a refusal names the
//! part that is wrong.
//!
//! The first byte is where the rest is cut into user and session. Each half is tried as
//! lossy UTF-8 (invalid bytes become U+FFFD, which must be refused) and, when it is
//! UTF-8, as it is.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ragchat_memory::message::validate_id;
use ragchat_memory::SessionKey;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let (user, session) = rest.split_at(usize::from(cut).min(rest.len()));
    check(
        &String::from_utf8_lossy(user),
        &String::from_utf8_lossy(session),
    );
    if let (Ok(user), Ok(session)) = (std::str::from_utf8(user), std::str::from_utf8(session)) {
        check(user, session);
    }
});

/// The rule, written independently of the code under test.
fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && id != "."
        && id != ".."
}

fn check(user: &str, session: &str) {
    for id in [user, session] {
        let verdict = validate_id("session", id);
        assert_eq!(
            verdict.is_ok(),
            is_valid_id(id),
            "validate_id({id:?}) = {verdict:?}"
        );
    }
    match SessionKey::new(user, session) {
        Ok(key) => {
            assert!(
                is_valid_id(user) && is_valid_id(session),
                "accepted {key:?}"
            );
            assert_eq!((key.user(), key.session()), (user, session));
            assert_eq!(key.to_string(), format!("{user}/{session}"));
        }
        Err(e) => {
            // The user is checked first, so the message names the first bad part.
            let blamed = if is_valid_id(user) {
                "session id"
            } else {
                "user id"
            };
            assert!(
                !(is_valid_id(user) && is_valid_id(session)),
                "refused valid ids {user:?} / {session:?}: {e}"
            );
            assert!(
                e.to_string().contains(blamed),
                "{e} should name the {blamed}"
            );
        }
    }
}

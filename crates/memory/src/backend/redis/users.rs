//! One page of the users who have sessions: how a whole Redis store is walked
//! (`sessions migrate`).
//!
//! Redis keeps no ordered list of users, and adding one would cost every append a write
//! to a key outside the user's hash tag (a second slot on a cluster, so no longer one
//! atomic script). The users are found instead by `SCAN`ning for their session indexes
//! (`ragchat:{<user>}:sessions`, see [`super::keys`]), on a cluster on every master
//! ([`super::walk`]).
//! `SCAN` returns keys in no order, so each page is a pass over the whole keyspace that
//! keeps the `limit` smallest ids after `after`: memory stays bounded by `limit`, each
//! step is a short command that never blocks Redis for other users, but **a page costs a
//! keyspace scan**, and walking `U` users in pages of `P` costs `U / P` scans. That is
//! fine for an operator's one-off walk and wrong for anything on a request path.
//!
//! A user whose last session has just expired may still be listed until the index
//! expires too (the index is listed, not each session checked); `list` then shows none.

use std::collections::BTreeSet;

use super::keys::{parse_user_index, user_index_pattern};
use super::walk::KeyWalk;
use super::RedisStore;
use crate::error::Result;
use crate::message::validate_id;

/// The `limit` smallest user ids after `after` seen so far.
struct Smallest<'a> {
    after: Option<&'a str>,
    limit: usize,
    ids: BTreeSet<String>,
}

impl Smallest<'_> {
    fn offer(&mut self, key: &[u8]) {
        let Some(user) = parse_user_index(key).and_then(|u| std::str::from_utf8(u).ok()) else {
            return;
        };
        if validate_id("user", user).is_err() || self.after.is_some_and(|a| user <= a) {
            return;
        }
        let full = self.ids.len() >= self.limit;
        if full && self.ids.last().is_some_and(|last| user >= last.as_str()) {
            return;
        }
        self.ids.insert(user.to_string());
        if self.ids.len() > self.limit {
            self.ids.pop_last();
        }
    }
}

impl RedisStore {
    /// See [`crate::SessionStore::users`] and the module docs.
    pub(super) async fn user_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let mut found = Smallest {
            after,
            limit: limit.max(1),
            ids: BTreeSet::new(),
        };
        let mut walk = KeyWalk::new(user_index_pattern());
        while let Some(keys) = self.walk_step(&mut walk).await? {
            keys.iter().for_each(|k| found.offer(k));
        }
        Ok(found.ids.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_smallest_ids_after_the_cursor() {
        let mut found = Smallest {
            after: Some("b"),
            limit: 2,
            ids: BTreeSet::new(),
        };
        for user in ["e", "a", "b", "d", "c", "bad id", "c"] {
            found.offer(super::super::keys::user_index(user).as_bytes());
        }
        found.offer(b"ragchat:{x}:s:y:l");
        assert_eq!(found.ids.into_iter().collect::<Vec<_>>(), ["c", "d"]);
    }
}

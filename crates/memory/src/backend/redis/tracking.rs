//! Server-assisted client-side caching (RESP3 `CLIENT TRACKING`): how a cached session
//! can be served without asking Redis whether it changed.
//!
//! The connection a [`RedisStore`](super::RedisStore) uses has tracking on, in the
//! default mode with `NOLOOP`: Redis remembers which keys this connection *read* and,
//! when any other connection modifies, deletes or expires one of them, pushes an
//! `invalidate` message naming it. Both scripts end by reading the session's meta hash
//! after their writes, so every session this process has loaded or appended to stays
//! tracked (a write of its own would otherwise drop it from the table); `NOLOOP` keeps
//! the process's own writes, which already update its cache, from invalidating it.
//!
//! Redis writes an invalidation into this connection's stream at the moment the other
//! write executes, so it comes before the reply to any command of ours that executes
//! later, and redis-rs hands pushes to [`Tracker::on_push`] from the connection's read
//! loop, in stream order, before it hands over later replies. A [`Stamp`] is taken just
//! before a command is sent; the cached copy that command produced is current as long as
//! no invalidation for its session was counted after the stamp and the connection (and
//! so the server's tracking of it) is still the one the stamp names:
//! - an invalidation for a write that executed before our command is either counted
//!   before the stamp (the command's reply includes that write) or after it (the copy is
//!   treated as stale: one needless round trip, never a stale read);
//! - an invalidation for a write that executed after our command is counted after the
//!   stamp, so the copy is stale;
//! - a dropped connection ends its generation: the new connection has tracking turned
//!   on before any command uses it, and every stamp of the old one is stale.
//!
//! Invalidations are recorded in a fixed table of counters indexed by a hash of the
//! session, so memory stays bounded whatever the number of sessions; two sessions that
//! share a counter only cost each other an occasional extra round trip.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use redis::{PushInfo, PushKind, Value};

use super::keys::parse_session_key;
use crate::message::SessionKey;
use crate::store::Stamp;

/// Counters in the invalidation table (8 bytes each: 512 KiB).
const SLOTS: usize = 1 << 16;

/// What this process has heard from Redis about changes to sessions it caches.
pub struct Tracker {
    /// The connection generation that has tracking on; 0 while there is none.
    live: AtomicU64,
    /// Invalidations counted so far (also bumped when everything is invalidated).
    counter: AtomicU64,
    /// Every stamp taken before this counter value is stale (a flush, or Redis dropped
    /// its tracking table).
    floor: AtomicU64,
    /// Per session hash: the counter value of its last invalidation.
    slots: Box<[AtomicU64]>,
    hasher: std::collections::hash_map::RandomState,
    /// Invalidation messages received, for metrics and tests.
    received: AtomicU64,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("live", &self.live.load(Ordering::Relaxed))
            .field("counter", &self.counter.load(Ordering::Relaxed))
            .finish()
    }
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            live: AtomicU64::new(0),
            counter: AtomicU64::new(1),
            floor: AtomicU64::new(0),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            received: AtomicU64::new(0),
        }
    }
}

impl Tracker {
    /// A stamp for a command about to be sent on the connection of `generation`, or
    /// `None` when that connection does not have tracking on.
    pub fn stamp(&self, generation: u64) -> Option<Stamp> {
        if generation == 0 || self.live.load(Ordering::SeqCst) != generation {
            return None;
        }
        Some(Stamp {
            generation,
            counter: self.counter.load(Ordering::SeqCst),
        })
    }

    /// Whether nothing told us that `key` changed since `stamp` was taken, on a
    /// connection that is still tracked.
    pub fn unchanged_since(&self, key: &SessionKey, stamp: Stamp) -> bool {
        self.live.load(Ordering::SeqCst) == stamp.generation
            && self.floor.load(Ordering::SeqCst) <= stamp.counter
            && self.slots[self.slot_of_session(key.user(), key.session())].load(Ordering::SeqCst)
                <= stamp.counter
    }

    /// Tracking is on for the connection of `generation` (before any command uses it).
    pub fn activate(&self, generation: u64) {
        // Whatever was said on earlier connections is moot: their stamps name another
        // generation.
        self.live.store(generation, Ordering::SeqCst);
    }

    /// The connection of `generation` is gone, or can no longer be trusted to have
    /// delivered every invalidation.
    pub fn deactivate(&self, generation: u64) {
        let _ = self
            .live
            .compare_exchange(generation, 0, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Whether the connection of `generation` is the one with tracking on.
    pub fn is_live(&self, generation: u64) -> bool {
        self.live.load(Ordering::SeqCst) == generation
    }

    /// Invalidation messages received so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Handles a push message that arrived on the connection of `generation`.
    pub fn on_push(&self, generation: u64, push: &PushInfo) {
        match push.kind {
            PushKind::Disconnection => self.deactivate(generation),
            PushKind::Invalidate => {
                self.received.fetch_add(1, Ordering::Relaxed);
                match push.data.first() {
                    Some(Value::Array(keys)) => {
                        for key in keys {
                            if let Value::BulkString(name) = key {
                                self.invalidate_key(name);
                            }
                        }
                    }
                    // A null payload: Redis flushed the database or dropped its
                    // tracking table; every cached session is suspect.
                    _ => self.invalidate_all(),
                }
            }
            _ => {}
        }
    }

    fn invalidate_all(&self) {
        let c = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        self.floor.fetch_max(c, Ordering::SeqCst);
    }

    /// `ragchat:{user}:s:<session>:<part>` marks its session; other keys are ignored.
    fn invalidate_key(&self, name: &[u8]) {
        let Some((user, session)) = parse_session_key(name) else {
            return;
        };
        let c = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        self.slots[self.slot_of(user, session)].fetch_max(c, Ordering::SeqCst);
    }

    fn slot_of_session(&self, user: &str, session: &str) -> usize {
        self.slot_of(user.as_bytes(), session.as_bytes())
    }

    fn slot_of(&self, user: &[u8], session: &[u8]) -> usize {
        let mut h = self.hasher.build_hasher();
        h.write(user);
        h.write_u8(0);
        h.write(session);
        (h.finish() as usize) % SLOTS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::redis::keys::SessionKeys;

    fn invalidate(keys: &[&str]) -> PushInfo {
        PushInfo {
            kind: PushKind::Invalidate,
            data: vec![Value::Array(
                keys.iter()
                    .map(|k| Value::BulkString(k.as_bytes().to_vec()))
                    .collect(),
            )],
        }
    }

    fn disconnect() -> PushInfo {
        PushInfo {
            kind: PushKind::Disconnection,
            data: vec![],
        }
    }

    #[test]
    fn a_stamp_goes_stale_when_its_session_is_invalidated_after_it() {
        let t = Tracker::default();
        let a = SessionKey::new("u", "a").unwrap();
        let b = SessionKey::new("u", "b").unwrap();
        assert_eq!(t.stamp(1), None, "no stamp before tracking is on");
        t.activate(1);
        let before = t.stamp(1).unwrap();
        assert!(t.unchanged_since(&a, before));

        t.on_push(1, &invalidate(&[&SessionKeys::new(&a).hash]));
        assert!(!t.unchanged_since(&a, before), "a changed after the stamp");
        let after = t.stamp(1).unwrap();
        assert!(
            t.unchanged_since(&a, after),
            "a stamp taken later is current"
        );
        assert_eq!(t.received(), 1);
        // b is unaffected unless it shares a's counter (1 in 65536).
        if t.slot_of_session("u", "a") != t.slot_of_session("u", "b") {
            assert!(t.unchanged_since(&b, before));
        }
    }

    #[test]
    fn a_flush_or_a_lost_connection_makes_everything_stale() {
        let t = Tracker::default();
        let a = SessionKey::new("u", "a").unwrap();
        t.activate(1);
        let s = t.stamp(1).unwrap();
        t.on_push(
            1,
            &PushInfo {
                kind: PushKind::Invalidate,
                data: vec![Value::Nil],
            },
        );
        assert!(!t.unchanged_since(&a, s));

        let s = t.stamp(1).unwrap();
        assert!(t.unchanged_since(&a, s));
        t.on_push(1, &disconnect());
        assert!(!t.unchanged_since(&a, s));
        assert_eq!(t.stamp(1), None);
        // A late disconnect of an old connection does not end the new one.
        t.activate(2);
        t.on_push(1, &disconnect());
        assert!(t.stamp(2).is_some());
    }
}

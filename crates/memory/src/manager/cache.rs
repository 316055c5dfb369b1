//! The cached state of one session and how store replies merge into it.
//!
//! A conversation's order is `(created_at, id)`: appends normally arrive in that
//! order, and entries that arrive late (a journal replayed after an outage, from this
//! server or another) are placed by their `created_at`, so every reader converges to
//! the same order whatever the arrival order was.
//!
//! A cached session is the conversation's recent tail, bounded like a read
//! ([`ReadLimit`]: messages and bytes): the oldest messages leave the copy as new ones
//! arrive, and `earlier` says that the conversation goes further back. So the RAM a
//! session takes, and the work of a turn, do not grow with the conversation.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::limits::ReadLimit;
use crate::message::Message;
use crate::store::{LoadedSession, SessionMeta, Stamp};

/// Seq given to messages that are in the local journal, not yet in the store.
pub(crate) const UNSYNCED: u64 = u64::MAX;

/// One cached session.
#[derive(Debug)]
pub(crate) struct Cached {
    /// Identifies this incarnation of the session (a deleted and recreated one differs).
    pub created_at_ms: i64,
    /// Every stored entry up to this seq has been merged (or was trimmed or corrupt).
    pub last_seq: u64,
    /// `seqs[i]` is the store seq of `messages[i]` (`UNSYNCED` for journaled ones).
    seqs: VecDeque<u64>,
    messages: Arc<VecDeque<Message>>,
    /// Whether `seqs` is ascending (false after an out-of-order insert).
    seqs_sorted: bool,
    pub ram_bytes: u64,
    pub corrupt_skipped: usize,
    /// Messages taken by the local journal and not yet seen back from the store.
    pub unsynced: usize,
    /// Built while the store was unreachable from what this process knew: may miss
    /// older messages.
    pub partial: bool,
    /// The conversation has older messages than the copy holds.
    pub earlier: bool,
    /// Stored bytes (content and sources) of the messages held.
    tail_bytes: u64,
    /// The bound of the copy.
    limit: ReadLimit,
    /// The stamp of the store command whose reply made this copy complete; while the
    /// store says nothing changed since, the copy is served without asking it.
    /// `None`: ask the store first.
    pub current_as_of: Option<Stamp>,
    /// When the store last refreshed the session's TTL for this process.
    pub touched: Instant,
}

impl Cached {
    /// A session as a read of its recent tail returned it.
    pub(super) fn from_load(loaded: LoadedSession, limit: ReadLimit) -> Self {
        let mut cached = Cached::empty(loaded.meta.created_at_ms, limit);
        cached.corrupt_skipped = loaded.corrupt.len();
        cached.current_as_of = loaded.stamp;
        cached.earlier = loaded.more;
        cached.merge(loaded.messages, &loaded.meta);
        cached
    }

    /// A session known only from the local journal (the store was unreachable).
    pub(super) fn from_journal(messages: Vec<Message>, limit: ReadLimit) -> Self {
        let created = messages.first().map_or(0, Message::created_at_millis);
        let mut cached = Cached::empty(created, limit);
        cached.partial = true;
        cached.add_unsynced(messages);
        cached
    }

    fn empty(created_at_ms: i64, limit: ReadLimit) -> Self {
        Cached {
            created_at_ms,
            last_seq: 0,
            seqs: VecDeque::new(),
            messages: Arc::new(VecDeque::new()),
            seqs_sorted: true,
            ram_bytes: 0,
            corrupt_skipped: 0,
            unsynced: 0,
            partial: false,
            earlier: false,
            tail_bytes: 0,
            limit,
            current_as_of: None,
            touched: Instant::now(),
        }
    }

    /// Whether the cache can be brought up to date incrementally (entries after `last_seq`).
    pub(super) fn is_clean(&self) -> bool {
        self.unsynced == 0 && !self.partial
    }

    /// Adds stored entries newer than the cached tail and applies the store's trimming.
    pub(super) fn merge(&mut self, entries: Vec<(u64, Message)>, meta: &SessionMeta) {
        let last_seq = self.last_seq;
        let mut fresh = entries
            .into_iter()
            .filter(|(seq, _)| *seq > last_seq)
            .peekable();
        let needs_trim = self.seqs.front().is_some_and(|s| *s <= meta.trimmed_seq);
        if fresh.peek().is_none() && !needs_trim {
            self.last_seq = self.last_seq.max(meta.last_seq);
            return;
        }
        for (seq, m) in fresh {
            self.insert(seq, m);
            self.last_seq = seq;
        }
        self.last_seq = self.last_seq.max(meta.last_seq);
        self.trim(meta.trimmed_seq);
        self.bound();
    }

    /// Adds messages the local journal took (no store seq yet).
    pub(super) fn add_unsynced(&mut self, messages: Vec<Message>) {
        for m in messages {
            self.insert(UNSYNCED, m);
            self.unsynced += 1;
        }
        self.bound();
    }

    /// Lets the oldest messages go while the copy is over its bound: it keeps the
    /// shortest tail that reaches the byte bound, and at most the message bound.
    fn bound(&mut self) {
        let max = self.limit.messages.max(1);
        let messages = Arc::make_mut(&mut self.messages);
        while let Some(front) = messages.front() {
            let size = front.stored_bytes();
            let over = messages.len() > max
                || (messages.len() > 1 && self.tail_bytes.saturating_sub(size) >= self.limit.bytes);
            if !over {
                break;
            }
            let seq = self.seqs.pop_front();
            if let Some(m) = messages.pop_front() {
                self.ram_bytes = self.ram_bytes.saturating_sub(m.ram_bytes() + 8);
                self.tail_bytes = self.tail_bytes.saturating_sub(size);
            }
            if seq == Some(UNSYNCED) {
                // Still in the journal; only this copy lets it go.
                self.unsynced = self.unsynced.saturating_sub(1);
            }
            self.earlier = true;
        }
    }

    /// Inserts by `(created_at, id)`; at the end in the common case.
    fn insert(&mut self, seq: u64, m: Message) {
        self.ram_bytes += m.ram_bytes() + 8;
        self.tail_bytes += m.stored_bytes();
        let messages = Arc::make_mut(&mut self.messages);
        let in_order = messages
            .back()
            .is_none_or(|last| (last.created_at, last.id) <= (m.created_at, m.id));
        if in_order {
            if self.seqs.back().is_some_and(|s| *s > seq) {
                self.seqs_sorted = false;
            }
            self.seqs.push_back(seq);
            messages.push_back(m);
        } else {
            let at = messages.partition_point(|x| (x.created_at, x.id) <= (m.created_at, m.id));
            messages.insert(at, m);
            self.seqs.insert(at, seq);
            self.seqs_sorted = false;
        }
    }

    /// Drops every entry the store trimmed (`seq <= trimmed_seq`).
    fn trim(&mut self, trimmed_seq: u64) {
        if trimmed_seq == 0 {
            return;
        }
        let messages = Arc::make_mut(&mut self.messages);
        if self.seqs_sorted {
            while self.seqs.front().is_some_and(|s| *s <= trimmed_seq) {
                self.seqs.pop_front();
                if let Some(m) = messages.pop_front() {
                    self.ram_bytes = self.ram_bytes.saturating_sub(m.ram_bytes() + 8);
                    self.tail_bytes = self.tail_bytes.saturating_sub(m.stored_bytes());
                }
            }
            return;
        }
        let mut kept_seqs = VecDeque::with_capacity(self.seqs.len());
        let mut kept = VecDeque::with_capacity(messages.len());
        for (seq, m) in self.seqs.drain(..).zip(messages.drain(..)) {
            if seq <= trimmed_seq {
                self.ram_bytes = self.ram_bytes.saturating_sub(m.ram_bytes() + 8);
                self.tail_bytes = self.tail_bytes.saturating_sub(m.stored_bytes());
            } else {
                kept_seqs.push_back(seq);
                kept.push_back(m);
            }
        }
        self.seqs = kept_seqs;
        *messages = kept;
        self.seqs_sorted = self
            .seqs
            .iter()
            .zip(self.seqs.iter().skip(1))
            .all(|(a, b)| a <= b);
    }

    /// A cheap snapshot of the messages.
    pub(super) fn snapshot(&self) -> Arc<VecDeque<Message>> {
        Arc::clone(&self.messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{millis_to_datetime, Message};

    fn meta(last_seq: u64, trimmed_seq: u64) -> SessionMeta {
        SessionMeta {
            message_count: 0,
            bytes: 0,
            created_at_ms: 1,
            updated_at_ms: 1,
            last_seq,
            trimmed_seq,
            ttl_remaining_secs: None,
            title: None,
        }
    }

    fn at(ms: i64, text: &str) -> Message {
        let mut m = Message::user(text);
        m.created_at = millis_to_datetime(ms);
        m
    }

    #[test]
    fn late_entries_are_placed_by_created_at_and_trimming_still_works() {
        let mut c = Cached::from_load(
            LoadedSession {
                meta: meta(2, 0),
                messages: vec![(1, at(10, "a")), (2, at(30, "c"))],
                corrupt: vec![],
                stamp: None,
                more: false,
                repaired: false,
            },
            ReadLimit::new(100, 1 << 20),
        );
        // A replayed message written at t=20 arrives after t=30 was stored.
        c.merge(vec![(3, at(20, "b"))], &meta(3, 0));
        let texts: Vec<String> = c.snapshot().iter().map(|m| m.content.clone()).collect();
        assert_eq!(texts, ["a", "b", "c"]);
        assert_eq!(c.last_seq, 3);
        // The store trims seqs 1 and 2 ("a" and "c"), keeping "b" (seq 3).
        c.merge(vec![], &meta(3, 2));
        let texts: Vec<String> = c.snapshot().iter().map(|m| m.content.clone()).collect();
        assert_eq!(texts, ["b"]);
    }

    #[test]
    fn entries_at_or_below_the_tail_are_not_merged_twice() {
        let mut c = Cached::from_load(
            LoadedSession {
                meta: meta(1, 0),
                messages: vec![(1, at(10, "a"))],
                corrupt: vec![],
                stamp: None,
                more: false,
                repaired: false,
            },
            ReadLimit::new(100, 1 << 20),
        );
        c.merge(vec![(1, at(10, "a")), (2, at(11, "b"))], &meta(2, 0));
        assert_eq!(c.snapshot().len(), 2);
    }

    #[test]
    fn the_copy_keeps_a_bounded_tail_and_says_the_conversation_goes_further_back() {
        let mut c = Cached::from_load(
            LoadedSession {
                meta: meta(2, 0),
                messages: vec![(1, at(10, "aaaa")), (2, at(11, "bbbb"))],
                corrupt: vec![],
                stamp: None,
                more: false,
                repaired: false,
            },
            ReadLimit::new(3, 8),
        );
        assert!(!c.earlier);
        // 4 + 4 bytes reach the bound: a third message pushes the oldest out.
        c.merge(vec![(3, at(12, "cccc"))], &meta(3, 0));
        let texts: Vec<String> = c.snapshot().iter().map(|m| m.content.clone()).collect();
        assert_eq!(texts, ["bbbb", "cccc"]);
        assert!(c.earlier);
        // Small messages: the message bound holds.
        c.merge(vec![(4, at(13, "d")), (5, at(14, "e"))], &meta(5, 0));
        let texts: Vec<String> = c.snapshot().iter().map(|m| m.content.clone()).collect();
        assert_eq!(texts, ["cccc", "d", "e"]);
        c.add_unsynced(vec![at(15, "f")]);
        assert_eq!(c.snapshot().len(), 3);
        assert_eq!(c.unsynced, 1);
    }
}

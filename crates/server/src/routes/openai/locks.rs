//! One turn at a time per conversation, on this server.
//!
//! Reconciling a resent conversation reads the stored one and then appends what is new;
//! two requests for the same conversation in between (a client that retries while its
//! first request still runs) would both find the same messages missing and both append
//! them. Holding a per-conversation lock from the read to the append makes the second
//! request see the first one's turn (it then counts as asking again). The lock is per
//! process: requests for one conversation spread over several servers at the same
//! instant are not serialized.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::OwnedMutexGuard;

/// Entries kept before dead ones are swept (amortized: the bound doubles with the live
/// count).
const SWEEP_AT_LEAST: usize = 1024;

/// Per-conversation async locks, created on demand and dropped when unused.
#[derive(Clone, Debug, Default)]
pub struct ConversationLocks {
    inner: Arc<Mutex<Table>>,
}

#[derive(Debug, Default)]
struct Table {
    locks: HashMap<(String, String), Weak<tokio::sync::Mutex<()>>>,
    sweep_at: usize,
}

impl ConversationLocks {
    /// Waits for the conversation `(user, session)` to be free and holds it until the
    /// guard is dropped.
    pub async fn lock(&self, user: &str, session: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut table = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if table.locks.len() >= table.sweep_at.max(SWEEP_AT_LEAST) {
                table.locks.retain(|_, weak| weak.strong_count() > 0);
                table.sweep_at = table.locks.len() * 2;
            }
            let key = (user.to_string(), session.to_string());
            match table.locks.get(&key).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    table.locks.insert(key, Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }

    /// Conversations with an entry (live or not yet swept).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .locks
            .len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_holder_per_conversation_and_unused_entries_are_swept() {
        let locks = ConversationLocks::default();
        let held = locks.lock("alice", "chat").await;
        let other = tokio::time::timeout(Duration::from_millis(50), locks.lock("bob", "chat"));
        assert!(
            other.await.is_ok(),
            "another user's conversation is not blocked"
        );
        let same = tokio::time::timeout(Duration::from_millis(50), locks.lock("alice", "chat"));
        assert!(same.await.is_err(), "the same conversation waits");
        drop(held);
        let _again = locks.lock("alice", "chat").await;

        for i in 0..3 * SWEEP_AT_LEAST {
            drop(locks.lock("carol", &format!("s{i}")).await);
        }
        assert!(locks.len() <= 2 * SWEEP_AT_LEAST, "{} entries", locks.len());
    }
}

//! Attempts in flight on this server: a retry waits for the attempt with the same key
//! in the same session to finish, then finds its turn stored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use ragchat_memory::SessionKey;
use tokio::sync::OwnedMutexGuard;

/// Keys above this many in [`InFlight`] trigger a sweep of finished ones.
const SWEEP_ABOVE: usize = 1024;

/// Attempts in flight on this server, one lock per (session, key).
#[derive(Debug, Default)]
pub struct InFlight {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl InFlight {
    /// Waits for any attempt with the same key in this session to finish, and holds
    /// the key until the guard is dropped.
    pub async fn lock(&self, key: &SessionKey, idempotency_key: &str) -> OwnedMutexGuard<()> {
        let name = format!("{}\0{}\0{idempotency_key}", key.user(), key.session());
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            if locks.len() > SWEEP_ABOVE {
                locks.retain(|_, lock| lock.strong_count() > 0);
            }
            match locks.get(&name).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(name, Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

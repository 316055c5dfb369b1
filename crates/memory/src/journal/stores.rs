//! What the journal keeps for stores other than a handle's own: reported, never
//! replayed there; and adopting entries written before entries named their store.

use std::path::Path;

use super::{Journal, JournalConfig, OtherStore, DEFAULT_JOURNAL_MAX_BYTES, UNLABELLED_STORE};
use crate::error::{MemoryError, Result};

impl Journal {
    /// Entries kept for other stores (including unlabelled ones), by store.
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be read.
    pub async fn other_stores(&self) -> Result<Vec<OtherStore>> {
        let describe = self.describe();
        self.run(move |conn, _, store| {
            let err = |e| Self::sql_error(&describe, e);
            let mut stmt = conn
                .prepare_cached(
                    "SELECT store, entries, bytes FROM journal_store_size
                      WHERE store <> ?1 AND entries > 0 ORDER BY store",
                )
                .map_err(err)?;
            let rows = stmt
                .query_map([store], |r| {
                    let name: String = r.get(0)?;
                    Ok(OtherStore {
                        store: if name.is_empty() {
                            UNLABELLED_STORE.to_string()
                        } else {
                            name
                        },
                        entries: r.get::<_, i64>(1)?.max(0) as u64,
                        bytes: r.get::<_, i64>(2)?.max(0) as u64,
                    })
                })
                .map_err(err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(err)
        })
        .await
    }

    /// Assigns the unlabelled entries (written before entries named their store) to
    /// this handle's store, so that the next replay moves them there. Returns how many.
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be written.
    pub async fn adopt_unlabelled(&self) -> Result<u64> {
        let describe = self.describe();
        self.run(move |conn, _, store| {
            let err = |e| Self::sql_error(&describe, e);
            let tx = conn.transaction().map_err(err)?;
            let n = tx
                .execute("UPDATE journal SET store = ?1 WHERE store IS NULL", [store])
                .map_err(err)?;
            tx.execute(
                "UPDATE journal_rejects SET store = ?1 WHERE store IS NULL",
                [store],
            )
            .map_err(err)?;
            tx.commit().map_err(err)?;
            Ok(n as u64)
        })
        .await
    }
}

/// The entries a journal file keeps for stores other than `store`, without creating
/// the file when there is none (a store that needs no journal still reports what an
/// earlier command of the same data dir left for another store).
///
/// # Errors
/// `Unavailable` when the file exists but cannot be read.
pub async fn other_stores_in(path: &Path, store: &str) -> Result<Vec<OtherStore>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let config = JournalConfig {
        path: path.to_path_buf(),
        max_bytes: DEFAULT_JOURNAL_MAX_BYTES,
    };
    let store = store.to_string();
    let journal = tokio::task::spawn_blocking(move || Journal::open(config, &store))
        .await
        .map_err(|e| MemoryError::Unavailable {
            store: format!("journal {}", path.display()),
            reason: format!("background task failed: {e}"),
        })??;
    journal.other_stores().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Message, SessionKey};

    #[tokio::test]
    async fn each_store_sees_only_its_own_entries_and_reports_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let config = JournalConfig {
            path: dir.path().join("journal.db"),
            max_bytes: 1 << 20,
        };
        let a = Journal::open(config.clone(), "redis://a:6379/0").unwrap();
        let b = Journal::open(config, "redis://b:6379/0").unwrap();
        let key = SessionKey::new("u", "s").unwrap();
        a.append(&key, &[Message::user("for a")]).await.unwrap();
        b.append(&key, &[Message::user("for b 1"), Message::user("for b 2")])
            .await
            .unwrap();
        assert_eq!(a.pending_sessions().await.unwrap(), vec![(key.clone(), 1)]);
        assert_eq!(a.stats().await.unwrap().entries, 1);
        assert_eq!(b.stats().await.unwrap().entries, 2);
        let texts: Vec<String> = b
            .entries(&key, crate::limits::ReadLimit::new(10, u64::MAX))
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.message.content)
            .collect();
        assert_eq!(texts, ["for b 1", "for b 2"]);
        assert_eq!(
            a.other_stores().await.unwrap(),
            vec![OtherStore {
                store: "redis://b:6379/0".into(),
                entries: 2,
                bytes: b.stats().await.unwrap().bytes,
            }]
        );
        assert_eq!(a.remove_session(&key).await.unwrap(), 1);
        assert_eq!(b.stats().await.unwrap().entries, 2, "b's entries are kept");
        let recent: Vec<String> = b
            .recent_messages(&key, crate::limits::ReadLimit::new(1, u64::MAX))
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.content)
            .collect();
        assert_eq!(recent, ["for b 2"]);
        assert_eq!(
            other_stores_in(&dir.path().join("journal.db"), "sqlite:///x")
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(other_stores_in(&dir.path().join("none.db"), "x")
            .await
            .unwrap()
            .is_empty());
        assert!(!dir.path().join("none.db").exists());
    }
}

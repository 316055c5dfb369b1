//! The journal of a build without the `sqlite` feature: it cannot be opened, so no
//! value of [`Journal`] exists and its methods are never called. It keeps the
//! manager's code the same in every build.

use std::convert::Infallible;
use std::path::Path;

use super::{JournalConfig, JournalEntry, JournalStats, OtherStore};
use crate::error::{MemoryError, Result};
use crate::limits::ReadLimit;
use crate::message::{Message, SessionKey};

/// The journal, which this build cannot open (see the module docs).
#[derive(Clone, Debug)]
pub struct Journal {
    never: Infallible,
}

impl Journal {
    /// Always refuses: the journal is an SQLite file.
    ///
    /// # Errors
    /// `InvalidInput` saying that this build has no sqlite support.
    pub fn open(config: JournalConfig, _store: &str) -> Result<Self> {
        Err(MemoryError::invalid(format!(
            "this build has no sqlite support (ragchat-memory was built without its `sqlite` \
             feature), so it cannot open the local journal {}",
            config.path.display()
        )))
    }

    /// Never called (no journal exists).
    pub fn path(&self) -> &Path {
        match self.never {}
    }

    /// Never called (no journal exists).
    pub fn store(&self) -> &str {
        match self.never {}
    }

    /// Never called (no journal exists).
    ///
    /// # Errors
    /// None.
    pub async fn append(&self, _key: &SessionKey, _messages: &[Message]) -> Result<()> {
        match self.never {}
    }

    /// Never called (no journal exists).
    ///
    /// # Errors
    /// None.
    pub async fn pending_sessions(&self) -> Result<Vec<(SessionKey, u64)>> {
        match self.never {}
    }

    /// Never called (no journal exists).
    ///
    /// # Errors
    /// None.
    pub fn pending_sessions_blocking(&self) -> Result<Vec<(SessionKey, u64)>> {
        match self.never {}
    }

    /// Never called (no journal exists).
    ///
    /// # Errors
    /// None.
    pub async fn entries(&self, _key: &SessionKey, _limit: ReadLimit) -> Result<Vec<JournalEntry>> {
        match self.never {}
    }

    /// Never called (no journal exists).
    ///
    /// # Errors
    /// None.
    pub async fn recent_messages(
        &self,
        _key: &SessionKey,
        _limit: ReadLimit,
    ) -> Result<Vec<Message>> {
        match self.never {}
    }

    /// Never called (no journal exists).
    ///
    /// # Errors
    /// None.
    pub async fn remove(&self, _seqs: Vec<i64>) -> Result<()> {
        match self.never {}
    }

    /// Never called (no journal exists).
    ///
    /// # Errors
    /// None.
    pub async fn remove_session(&self, _key: &SessionKey) -> Result<u64> {
        match self.never {}
    }

    /// Never called (no journal exists).
    ///
    /// # Errors
    /// None.
    pub async fn remove_session_before(&self, _key: &SessionKey, _before_ms: i64) -> Result<u64> {
        match self.never {}
    }

    /// Never called (no journal exists).
    ///
    /// # Errors
    /// None.
    pub async fn sessions_of(&self, _user: &str) -> Result<Vec<SessionKey>> {
        match self.never {}
    }

    /// Never called (no journal exists).
    ///
    /// # Errors
    /// None.
    pub async fn scrub(&self) -> Result<()> {
        match self.never {}
    }

    /// Never called (no journal exists).
    ///
    /// # Errors
    /// None.
    pub async fn stats(&self) -> Result<JournalStats> {
        match self.never {}
    }

    /// Never called (no journal exists).
    ///
    /// # Errors
    /// None.
    pub async fn other_stores(&self) -> Result<Vec<OtherStore>> {
        match self.never {}
    }

    /// Never called (no journal exists).
    ///
    /// # Errors
    /// None.
    pub async fn adopt_unlabelled(&self) -> Result<u64> {
        match self.never {}
    }
}

/// Entries a journal file keeps for other stores: none can exist in this build.
///
/// # Errors
/// None.
pub async fn other_stores_in(_path: &Path, _store: &str) -> Result<Vec<OtherStore>> {
    Ok(Vec::new())
}

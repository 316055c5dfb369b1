//! Copying one user, then one session, from the source store to the target.
//!
//! Everything is paged and bounded like the rest of ragchat: users come in pages of
//! [`USER_PAGE`], a user's sessions in pages of [`SESSION_PAGE`], a session's messages
//! in reads bounded by [`READ`]; each read becomes one append to the target, with the
//! same message ids. An append is atomic and idempotent by id, so whatever stopped a
//! run (a kill, an outage), running it again stores what is missing and nothing twice.

use anyhow::Result;
use indicatif::ProgressBar;
use ragchat_memory::store::AppendOptions;
use ragchat_memory::{
    Message, MessageId, Quotas, ReadFrom, ReadLimit, SessionKey, SessionStore, SessionSummary, Ttl,
};
use serde::Serialize;

/// Users asked for at once. On Redis a page costs a scan of the keyspace, so pages are
/// large: the ids are all a page holds.
pub(super) const USER_PAGE: usize = 1000;

/// Sessions of a user listed at once.
const SESSION_PAGE: usize = 100;

/// The most one read of the source (and so one append to the target) carries.
const READ: ReadLimit = ReadLimit::new(500, 4 * 1024 * 1024);

/// What a run did, printed at its end (and, as far as it got, when it fails).
#[derive(Debug, Default, Clone, Serialize)]
pub(super) struct Summary {
    /// The source store (no password).
    pub from: String,
    /// The target store (no password).
    pub to: String,
    /// Users with at least one session walked.
    pub users: u64,
    /// Sessions walked (copied now, or found complete in the target).
    pub sessions: u64,
    /// Messages the target stored during this run.
    pub messages: u64,
    /// Bytes of those messages (content plus encoded sources).
    pub bytes: u64,
    /// Messages the target held already (an earlier run, or an interrupted one).
    pub skipped: u64,
    /// Stored entries of the source that could not be read: skipped, never copied.
    pub corrupt: u64,
}

/// A source, a target, and how to write into the target.
pub(super) struct Copier<'a> {
    pub source: &'a dyn SessionStore,
    pub target: &'a dyn SessionStore,
    /// The TTL of the target's sessions: none for a durable store, `--ttl` on Redis.
    pub target_ttl: Ttl,
    pub progress: &'a ProgressBar,
}

impl Copier<'_> {
    /// The options of every append to the target: no trimming, no quotas (the source
    /// kept these conversations; the target takes all of them).
    fn append_options(&self) -> AppendOptions {
        AppendOptions {
            ttl: self.target_ttl,
            max_messages: 0,
            refresh_ttl: true,
            quotas: Quotas::UNBOUNDED,
        }
    }

    /// Copies every session of `user`.
    ///
    /// # Errors
    /// When either store fails (the summary keeps what was done until then).
    pub(super) async fn user(&self, user: &str, summary: &mut Summary) -> Result<()> {
        let mut after = None;
        let mut any = false;
        loop {
            let page = self.source.list(user, after.as_ref(), SESSION_PAGE).await?;
            for listed in &page.sessions {
                let key = SessionKey::new(user, &listed.session)?;
                if !any {
                    any = true;
                    summary.users += 1;
                }
                self.session(&key, listed, summary).await?;
                summary.sessions += 1;
                self.progress.inc(1);
                self.progress.set_message(format!(
                    "{} users, {} messages copied, {} already there",
                    summary.users, summary.messages, summary.skipped
                ));
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// Copies one session: its messages page by page, then its title.
    async fn session(
        &self,
        key: &SessionKey,
        listed: &SessionSummary,
        summary: &mut Summary,
    ) -> Result<()> {
        // Reading refreshes a session's TTL: the source's is given back as it was
        // (to the second), so the copy leaves the source as it found it.
        let source_ttl = Ttl::secs(listed.ttl_remaining_secs.map_or(0, |s| s.max(1)));
        let (mut stored, mut already, mut corrupt) = (0, 0, 0);
        if self.already_copied(key, listed, source_ttl).await? {
            already = listed.message_count;
        } else {
            let mut after = 0;
            loop {
                let Some(page) = self
                    .source
                    .load(key, ReadFrom::After(after), READ, source_ttl)
                    .await?
                else {
                    break; // deleted (or expired) since it was listed
                };
                corrupt += page.corrupt.len() as u64;
                let messages: Vec<Message> = page.messages.iter().map(|(_, m)| m.clone()).collect();
                if after == 0 && messages.is_empty() && !page.more {
                    // An empty session is a session too.
                    self.target.create(key, self.target_ttl).await?;
                }
                if !messages.is_empty() {
                    let outcome = self
                        .target
                        .append(key, &messages, self.append_options())
                        .await?;
                    for (m, seq) in messages.iter().zip(&outcome.seqs) {
                        if seq.is_some() {
                            stored += 1;
                            summary.bytes += m.stored_bytes();
                        } else {
                            already += 1;
                        }
                    }
                }
                match page.last_seq_read() {
                    Some(last) if page.more => after = last,
                    _ => break,
                }
            }
        }
        self.keep_title(key, listed).await?;
        summary.messages += stored;
        summary.skipped += already;
        summary.corrupt += corrupt;
        if corrupt > 0 {
            tracing::warn!(session = %key, corrupt, "skipped stored messages of the source that could not be read");
        }
        tracing::debug!(session = %key, stored, already, corrupt, "copied a session");
        Ok(())
    }

    /// Whether the target already holds exactly this session, so its messages need
    /// not be sent again: the same count and the same newest message.
    ///
    /// Why that is enough: a copy appends a session's messages in `seq` order, one
    /// atomic append per read, and never trims. So once the target holds the source's
    /// newest message, it holds every message the source held when that one was
    /// copied; since then the source can only have lost its oldest ones (trimming) or
    /// gained newer ones (which would change its newest). The target holds a superset
    /// of the source, and with equal counts, the same messages. A source with
    /// unreadable entries never matches (they count in the source, never in the
    /// target), so it is walked, and its corrupt entries reported, on every run.
    async fn already_copied(
        &self,
        key: &SessionKey,
        listed: &SessionSummary,
        source_ttl: Ttl,
    ) -> Result<bool> {
        let Some(meta) = self.target.meta(key).await? else {
            return Ok(false);
        };
        if meta.message_count != listed.message_count {
            return Ok(false);
        }
        if listed.message_count == 0 {
            return Ok(true);
        }
        let source = newest_id(self.source, key, source_ttl).await?;
        let target = newest_id(self.target, key, self.target_ttl).await?;
        Ok(source.is_some() && source == target)
    }

    /// Gives the target the source's title when they differ. The target titles a
    /// session by its first question itself; a title given by a person, or a first
    /// question the source has since trimmed, is set explicitly.
    async fn keep_title(&self, key: &SessionKey, listed: &SessionSummary) -> Result<()> {
        let Some(title) = &listed.title else {
            return Ok(());
        };
        let current = self.target.meta(key).await?.and_then(|m| m.title);
        if current.as_ref() != Some(title) {
            self.target.set_title(key, Some(title)).await?;
        }
        Ok(())
    }
}

/// The id of the session's newest message in `store` (`None`: no session, no
/// messages, or the newest entry cannot be read).
async fn newest_id(
    store: &dyn SessionStore,
    key: &SessionKey,
    ttl: Ttl,
) -> Result<Option<MessageId>> {
    let newest = ReadFrom::Newest { after: 0 };
    let read = store
        .load(key, newest, ReadLimit::new(1, u64::MAX), ttl)
        .await?;
    Ok(read.and_then(|r| r.messages.last().map(|(_, m)| m.id)))
}

//! Search over both tiers: the archive's index, after writing there what this process
//! appended and has not archived yet (`archive_now`, as `--archive-mode sync` does for
//! every append). So a message is found as soon as its append is acknowledged on this
//! server, with one ranking and one cursor for every hit (no merge of two rankings).
//! Other servers' appends are found once their archiver has written them (its
//! `batch_delay`, 50 ms by default), or after a crash once a sweep has. The writing is
//! the archiver's next round on those sessions, done earlier (that round then finds
//! nothing left but to look); usually nothing is pending and a search writes nothing.
//! A query that is not `fresh` (a turn's recall) skips the writing and finds what the
//! archive holds.

use futures::{StreamExt, TryStreamExt};

use super::{archiver, TieredStore};
use crate::error::Result;
use crate::search::{SearchPage, SearchQuery};

/// Sessions of the user archived at once before a search.
const CATCH_UP_CONCURRENCY: usize = 4;

/// One page of `user`'s hits (see the module docs).
pub(super) async fn search(
    store: &TieredStore,
    user: &str,
    query: &SearchQuery,
) -> Result<SearchPage> {
    let behind = if query.fresh {
        store.shared.pending_of(user, query.session.as_deref())
    } else {
        Vec::new()
    };
    futures::stream::iter(behind)
        .map(|key| async move {
            archiver::archive_now(
                &store.hot,
                store.archive.as_ref(),
                &store.shared,
                &store.config,
                &key,
            )
            .await
        })
        .buffer_unordered(CATCH_UP_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    store.archive.search(user, query).await
}

//! The hot tier on a Redis Cluster (issue 13): the archiver's scripts run on the
//! session's master, the sweep walks every master, rehydration puts a conversation back
//! on the master of its slot.
#![cfg(all(feature = "redis", feature = "sqlite"))]

mod tiers_support;

use std::sync::Arc;
use std::time::Duration;

use ragchat_memory::testing::unique_key;
use ragchat_memory::{SessionStore, Ttl};
use tiers_support::{archived_ids, config, eventually, opts, turn, Archive};

/// The hot tier on a Redis Cluster: archiving, the sweep over every master (what a
/// dead process left, on whichever master holds it), expiry once archived, and
/// rehydration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hot_tier_works_on_a_redis_cluster() {
    let Some(cluster) = ragchat_testkit::RedisCluster::start_or_skip() else {
        return;
    };
    let archive = Archive::sqlite();
    let opts_ = ragchat_memory::StoreOptions::default();
    let open = async |cfg: ragchat_memory::tier::TierConfig| {
        let hot = ragchat_memory::backend::redis::RedisStore::connect(&cluster.url(), &opts_)
            .await
            .expect("cluster");
        let back = archive.open().await;
        Arc::new(ragchat_memory::tier::TieredStore::new(hot, back, cfg).unwrap())
    };
    let keys: Vec<_> = (0..12).map(|i| unique_key(&format!("c{i}"))).collect();
    {
        let mut cfg = config(2);
        cfg.batch_delay = Duration::from_secs(3600);
        cfg.sweep_every = None;
        let dying = open(cfg).await;
        for key in &keys {
            dying.append(key, &turn(0), opts(2)).await.unwrap();
        }
    }
    let survivor = open(config(2)).await;
    let direct = archive.open().await;
    for key in &keys {
        eventually(
            Duration::from_secs(20),
            "the sweep reaches every master",
            async || archived_ids(direct.as_ref(), key).await.len() == 2,
        )
        .await;
    }
    // Archived, the sessions expire from the cluster; reading brings one back.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let gone = survivor.meta(&keys[0]).await.unwrap();
    assert!(gone.is_some(), "stats come from the archive");
    let back = survivor
        .load(
            &keys[0],
            ragchat_memory::ReadFrom::After(0),
            ragchat_memory::ReadLimit::new(10, 1 << 20),
            Ttl::secs(2),
        )
        .await
        .unwrap()
        .expect("rehydrated");
    assert_eq!(back.messages.len(), 2);
    assert_eq!(survivor.archive_status().unwrap().rehydrations_total, 1);
    // Listing an archived-only conversation asks the cluster which it holds.
    let listed = survivor.list(keys[1].user(), None, 10).await.unwrap();
    assert_eq!(listed.sessions.len(), 1);
    assert_eq!(
        listed.sessions[0].tier,
        Some(ragchat_memory::Tier::Archived)
    );
}

//! [`RedisCluster`]: a real Redis Cluster of masters on free ports, for tests.

use std::time::{Duration, Instant};

use crate::{free_port, RedisServer, RedisServerBuilder};

/// A Redis Cluster of N masters (no replicas), each a [`RedisServer`] with
/// `cluster-enabled yes` and its own data dir, joined with `redis-cli --cluster create`.
/// Nodes can be stopped and started again like single servers; the cluster heals when
/// a node comes back on its port with its `nodes.conf`.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts a cluster of `masters` nodes (3 is the smallest Redis accepts), each built
    /// from `configure(builder)`, and waits until it reports `cluster_state:ok`.
    ///
    /// # Panics
    /// When a node cannot start or the cluster does not form within 20 s.
    pub fn start_with(
        masters: usize,
        configure: impl Fn(RedisServerBuilder) -> RedisServerBuilder,
    ) -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..masters)
            .map(|_| {
                configure(RedisServer::builder())
                    .arg("--cluster-enabled", "yes")
                    .arg("--cluster-config-file", "nodes.conf")
                    .arg("--cluster-node-timeout", "2000")
                    // An explicit bus port: the default (port + 10000) may be taken or out of range.
                    .arg("--cluster-port", free_port().to_string())
                    .start()
            })
            .collect();
        let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
        args.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())));
        args.push("--cluster-yes".into());
        let output = std::process::Command::new(crate::REDIS_CLI_BIN)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli --cluster create: {e}"));
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_ok(Duration::from_secs(20));
        cluster
    }

    /// A default cluster of three masters, or `None` (after a note) without redis-server;
    /// in CI a missing redis-server panics.
    pub fn start_or_skip() -> Option<RedisCluster> {
        Self::start_with_or_skip(3, |b| b)
    }

    /// [`RedisCluster::start_with`], or `None` (after a note) without redis-server; in CI
    /// a missing redis-server panics.
    pub fn start_with_or_skip(
        masters: usize,
        configure: impl Fn(RedisServerBuilder) -> RedisServerBuilder,
    ) -> Option<RedisCluster> {
        if !crate::redis_available() {
            crate::skip(crate::SKIP_NO_REDIS);
            return None;
        }
        Some(Self::start_with(masters, configure))
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...`
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// The nodes.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// One node, to stop or restart it.
    pub fn node_mut(&mut self, i: usize) -> &mut RedisServer {
        &mut self.nodes[i]
    }

    /// Waits until every running node reports `cluster_state:ok`.
    ///
    /// # Panics
    /// When that does not happen within `within`.
    pub fn wait_ok(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let ok = self
                .nodes
                .iter()
                .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"));
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not reach cluster_state:ok in {within:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The node that holds `key`'s slot (by asking the cluster).
    pub fn node_for_key(&self, key: &str) -> usize {
        let slot: u16 = self.nodes[0]
            .cli(&["CLUSTER", "KEYSLOT", key])
            .parse()
            .expect("CLUSTER KEYSLOT answers a number");
        let flat = self.nodes[0].cli(&["CLUSTER", "SLOTS"]);
        let lines: Vec<&str> = flat.lines().collect();
        // Flat output: start, end, ip, port, id, (replicas...) repeated; find the range.
        let mut i = 0;
        while i + 3 < lines.len() {
            if let (Ok(start), Ok(end)) = (lines[i].parse::<u16>(), lines[i + 1].parse::<u16>()) {
                if let Ok(port) = lines[i + 3].parse::<u16>() {
                    if (start..=end).contains(&slot) {
                        return self
                            .nodes
                            .iter()
                            .position(|n| n.port() == port)
                            .expect("the slot owner is one of our nodes");
                    }
                }
            }
            i += 1;
        }
        panic!("no node owns slot {slot}:\n{flat}");
    }
}

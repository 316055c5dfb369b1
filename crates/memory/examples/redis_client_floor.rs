//! What the Redis client ragchat uses can do at best, with no ragchat code around it: one
//! multiplexed RESP3 connection (redis-rs, as `RedisStore` opens it) on a current-thread
//! runtime (as `ragchat bench memory` runs), `clients` tasks sharing it, each sending one
//! command at a time and waiting for its reply:
//! - `rpush`: an RPUSH of a 300-byte value to a list of its own;
//! - `floor`: an EVALSHA of `benches/layout/floor.lua` (the lean append's six commands
//!   without its logic), with a turn's keys and arguments.
//!
//! `benches/layout/run` runs it beside `redis-benchmark` on the same Redis, so the rates
//! are comparable within one run: what a turn through this client loses to
//! `redis-benchmark` before any of ragchat's own work.
//!
//!     cargo run --release -p ragchat-memory --example redis_client_floor -- \
//!         PORT rpush|floor CLIENTS OPS
//!
//! Prints one JSON line: `{"mode":..,"clients":..,"ops":..,"ops_per_s":..}`.

use std::time::Instant;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ProtocolVersion, RedisResult};

const FLOOR: &str = include_str!("../../../benches/layout/floor.lua");

#[derive(Clone, Copy)]
enum Mode {
    Rpush,
    Floor,
}

async fn one_client(
    mut conn: MultiplexedConnection,
    mode: Mode,
    me: usize,
    ops: u64,
    sha: String,
) -> RedisResult<()> {
    let value = "v".repeat(300);
    let packed = "v".repeat(339);
    let list = format!("client-floor:{me}");
    let tag = format!("client-floor:{{{me}}}");
    let keys = ["l", "h", "index", "usage"].map(|k| format!("{tag}:{k}"));
    for _ in 0..ops {
        match mode {
            Mode::Rpush => {
                let _: i64 = redis::cmd("RPUSH")
                    .arg(&list)
                    .arg(&value)
                    .query_async(&mut conn)
                    .await?;
            }
            Mode::Floor => {
                let _: redis::Value = redis::cmd("EVALSHA")
                    .arg(&sha)
                    .arg(keys.len())
                    .arg(&keys)
                    .arg(1_764_400_000_000_u64)
                    .arg(10)
                    .arg(256)
                    .arg(1000)
                    .arg("s")
                    .arg(16_777_216)
                    .arg(268_435_456)
                    .arg("")
                    .arg(0)
                    .arg(3600)
                    .arg(&packed)
                    .arg(&packed)
                    .query_async(&mut conn)
                    .await?;
            }
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, mode, clients, ops] = args.as_slice() else {
        return Err("usage: redis_client_floor PORT rpush|floor CLIENTS OPS".into());
    };
    let mode = match mode.as_str() {
        "rpush" => Mode::Rpush,
        "floor" => Mode::Floor,
        other => return Err(format!("unknown mode {other:?}: rpush or floor").into()),
    };
    let clients: usize = clients.parse()?;
    let ops: u64 = ops.parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let info = Client::open(format!("redis://127.0.0.1:{port}"))?
            .get_connection_info()
            .clone();
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = Client::open(info.set_redis_settings(resp3))?;
        let mut conn = client
            .get_multiplexed_async_connection_with_config(
                &AsyncConnectionConfig::new().set_response_timeout(None),
            )
            .await?;
        let _: () = redis::cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .arg("NOLOOP")
            .query_async(&mut conn)
            .await?;
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(FLOOR)
            .query_async(&mut conn)
            .await?;
        for me in 0..clients {
            let tag = format!("client-floor:{{{me}}}");
            let _: () = redis::pipe()
                .cmd("RPUSH")
                .arg(format!("{tag}:l"))
                .arg("x")
                .ignore()
                .cmd("HSET")
                .arg(format!("{tag}:h"))
                .arg(&[
                    "seq",
                    "10",
                    "count",
                    "10",
                    "bytes",
                    "3000",
                    "created_at",
                    "1",
                ])
                .ignore()
                .query_async(&mut conn)
                .await?;
        }
        let per_client = ops.div_ceil(clients.max(1) as u64);
        let started = Instant::now();
        let tasks: Vec<_> = (0..clients.max(1))
            .map(|me| tokio::spawn(one_client(conn.clone(), mode, me, per_client, sha.clone())))
            .collect();
        for task in tasks {
            task.await??;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let done = per_client * clients.max(1) as u64;
        println!(
            "{{\"mode\":\"{}\",\"clients\":{},\"ops\":{done},\"ops_per_s\":{:.0}}}",
            match mode {
                Mode::Rpush => "rpush",
                Mode::Floor => "floor",
            },
            clients.max(1),
            done as f64 / elapsed
        );
        Ok(())
    })
}

//! The harness against real `redis-server` processes; each test skips when Redis is not installed.

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ragchat_testkit::{redis_or_skip, RedisServer};

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn start_serves_commands_in_its_own_dir() {
    let Some(redis) = redis_or_skip() else { return };

    assert_ne!(redis.port(), 6379);
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}", redis.port()));
    assert!(redis.dir().is_dir());
    assert_eq!(redis.cli(&["SET", "greeting", "hello world"]), "OK");
    assert_eq!(redis.cli(&["GET", "greeting"]), "hello world");
    assert_eq!(redis.cli(&["GET", "missing"]), "");
    assert_eq!(redis.cli(&["CONFIG", "GET", "save"]), "save");
    assert!(redis.log().contains("Ready to accept connections"));
}

#[test]
fn restart_with_appendonly_keeps_data() {
    let Some(mut redis) = RedisServer::builder()
        .appendonly(true)
        .appendfsync("always")
        .start_or_skip()
    else {
        return;
    };
    let port = redis.port();
    redis.cli(&["SET", "k", "v"]);
    redis.cli(&["RPUSH", "list", "a", "b", "c"]);

    redis.restart();

    assert_eq!(redis.port(), port);
    assert_eq!(redis.cli(&["GET", "k"]), "v");
    assert_eq!(redis.cli(&["LRANGE", "list", "0", "-1"]), "a\nb\nc");
    assert!(redis.dir().join("appendonlydir").is_dir());
}

#[test]
fn restart_without_persistence_loses_data() {
    let Some(mut redis) = redis_or_skip() else {
        return;
    };
    redis.cli(&["SET", "k", "v"]);

    redis.restart();

    assert_eq!(redis.cli(&["GET", "k"]), "");
}

#[test]
fn stop_then_start_again_uses_the_same_port() {
    let Some(mut redis) = redis_or_skip() else {
        return;
    };
    let port = redis.port();
    let first_pid = redis.pid().expect("running server has a pid");

    redis.stop();

    assert!(!redis.is_running());
    assert_eq!(redis.pid(), None);
    assert!(!process_exists(first_pid));
    let refused = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port));
    assert!(
        refused.is_err(),
        "nothing should listen on a stopped server's port"
    );
    redis.stop(); // idempotent

    redis.start_again();

    assert!(redis.is_running());
    assert_eq!(redis.port(), port);
    assert_ne!(redis.pid(), Some(first_pid));
    assert_eq!(redis.cli(&["PING"]), "PONG");
}

#[test]
fn shutdown_is_graceful_and_keeps_appendonly_data() {
    let Some(mut redis) = RedisServer::builder()
        .appendonly(true)
        .appendfsync("no")
        .start_or_skip()
    else {
        return;
    };
    redis.cli(&["SET", "k", "v"]);

    redis.shutdown();

    assert!(!redis.is_running());
    assert!(redis.log().contains("ready to exit, bye bye"));
    redis.start_again();
    assert_eq!(redis.cli(&["GET", "k"]), "v");
}

#[test]
fn restart_waits_until_a_large_dataset_is_loaded() {
    let Some(mut redis) = RedisServer::builder()
        .appendonly(true)
        .arg("--enable-debug-command", "local")
        .start_or_skip()
    else {
        return;
    };
    redis.cli(&["DEBUG", "POPULATE", "300000"]);
    // DEBUG POPULATE is not written to the AOF; a rewrite puts the keys into its base file.
    redis.cli(&["BGREWRITEAOF"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !rewrite_finished(&redis.cli(&["INFO", "persistence"])) {
        assert!(Instant::now() < deadline, "AOF rewrite did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }

    redis.restart();

    // No retries: start_again only returns once PING answers +PONG rather than -LOADING.
    assert_eq!(redis.cli(&["DBSIZE"]), "300000");
}

fn rewrite_finished(info: &str) -> bool {
    [
        "aof_rewrite_in_progress:0",
        "aof_rewrite_scheduled:0",
        "aof_last_bgrewrite_status:ok",
    ]
    .iter()
    .all(|field| info.lines().any(|line| line.trim() == *field))
}

#[test]
fn two_servers_get_different_ports_and_data() {
    let Some(a) = redis_or_skip() else { return };
    let Some(b) = redis_or_skip() else { return };

    assert_ne!(a.port(), b.port());
    assert_ne!(a.dir(), b.dir());
    a.cli(&["SET", "owner", "a"]);
    assert_eq!(b.cli(&["GET", "owner"]), "");
}

#[test]
fn drop_kills_the_process_and_removes_the_dir() {
    let Some(redis) = redis_or_skip() else { return };
    let pid = redis.pid().expect("running server has a pid");
    let dir = redis.dir().to_path_buf();
    let port = redis.port();
    assert!(process_exists(pid));

    drop(redis);

    assert!(!process_exists(pid), "redis-server {pid} survived drop");
    assert!(!dir.exists());
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("port is free after drop");
}

#[test]
fn drop_kills_the_process_when_the_test_panics() {
    let Some(redis) = redis_or_skip() else { return };
    let pid = redis.pid().expect("running server has a pid");

    let outcome = std::thread::spawn(move || {
        let _redis = redis;
        panic!("simulated test failure");
    })
    .join();

    assert!(outcome.is_err());
    assert!(!process_exists(pid), "redis-server {pid} survived a panic");
}

#[test]
fn requirepass_is_enforced_and_used_by_the_harness() {
    let password = "s3cret pass@word";
    let Some(redis) = RedisServer::builder().requirepass(password).start_or_skip() else {
        return;
    };

    assert_eq!(
        redis.url(),
        format!("redis://:s3cret%20pass%40word@127.0.0.1:{}", redis.port())
    );
    assert_eq!(redis.cli(&["PING"]), "PONG");
    let unauthenticated = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &redis.port().to_string(), "PING"])
        .env_remove("REDISCLI_AUTH")
        .output()
        .expect("redis-cli runs");
    assert!(String::from_utf8_lossy(&unauthenticated.stdout).contains("NOAUTH"));
}

#[test]
fn extra_args_reach_the_server() {
    let Some(redis) = RedisServer::builder()
        .arg("--maxmemory", "10mb")
        .start_or_skip()
    else {
        return;
    };

    assert_eq!(
        redis.cli(&["CONFIG", "GET", "maxmemory"]),
        "maxmemory\n10485760"
    );
}

#[test]
fn invalid_config_panics_with_the_server_log() {
    let outcome = std::panic::catch_unwind(|| {
        RedisServer::builder()
            .arg("--no-such-directive", "1")
            .start_or_skip()
    });

    let panic = match outcome {
        Ok(None) => return,
        Ok(Some(_)) => panic!("start should panic on an unknown directive"),
        Err(panic) => panic,
    };

    let message = panic
        .downcast_ref::<String>()
        .expect("panic message is a String");
    assert!(message.contains("exited before it was ready"), "{message}");
    assert!(message.contains("no-such-directive"), "{message}");
}

#[test]
#[should_panic(expected = "still running")]
fn start_again_while_running_panics() {
    let Some(mut redis) = redis_or_skip() else {
        panic!("still running (skipped: redis-server not installed)")
    };
    redis.start_again();
}

#[test]
fn start_again_waits_while_its_port_is_busy() {
    let Some(mut redis) = redis_or_skip() else {
        return;
    };
    let port = redis.port();
    redis.stop();
    let squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("port is free");
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        drop(squatter);
    });

    redis.start_again();

    release.join().unwrap();
    assert_eq!(redis.port(), port);
    assert_eq!(redis.cli(&["PING"]), "PONG");
    assert!(redis.log().contains("Address already in use"));
}

#[test]
fn start_again_panics_when_its_port_stays_busy() {
    let Some(mut redis) = redis_or_skip() else {
        return;
    };
    redis.stop();
    let _squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, redis.port())).expect("port is free");

    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| redis.start_again()));

    let panic = outcome.expect_err("start_again should give up");
    let message = panic
        .downcast_ref::<String>()
        .expect("panic message is a String");
    assert!(message.contains("the port stayed in use"), "{message}");
}

//! The PostgreSQL harness itself: a private server starts, keeps committed data across a
//! crash and a clean shutdown, and leaves nothing running when dropped.

use std::path::PathBuf;

use ragchat_testkit::postgres_or_skip;

#[test]
fn a_server_starts_answers_and_keeps_data_across_a_crash_and_a_shutdown() {
    let Some(mut pg) = postgres_or_skip() else {
        return;
    };
    assert_ne!(pg.port(), 5432, "never the developer's PostgreSQL");
    assert_eq!(pg.psql("postgres", "SELECT 1 + 1"), "2");
    let url = pg.create_database("app");
    assert!(url.ends_with("/app"), "{url}");
    pg.psql(
        "app",
        "CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')",
    );

    let port = pg.port();
    pg.restart();
    assert_eq!(pg.port(), port, "a restart keeps the port");
    assert_eq!(pg.psql("app", "SELECT v FROM t"), "kept");

    pg.shutdown();
    assert!(!pg.is_running());
    pg.start_again();
    assert_eq!(pg.psql("app", "SELECT count(*) FROM t"), "1");
}

#[test]
fn dropping_a_server_stops_it_and_removes_its_directory() {
    let Some(pg) = postgres_or_skip() else {
        return;
    };
    let dir: PathBuf = pg.dir().to_path_buf();
    let pid = pg.pid().expect("running");
    drop(pg);
    assert!(!dir.exists(), "{} should be removed", dir.display());
    assert!(
        !PathBuf::from(format!("/proc/{pid}")).exists(),
        "postmaster {pid} should be gone"
    );
}

#[test]
fn two_servers_run_side_by_side_with_their_own_data() {
    let (Some(a), Some(b)) = (postgres_or_skip(), postgres_or_skip()) else {
        return;
    };
    assert_ne!(a.port(), b.port());
    a.psql("postgres", "CREATE TABLE only_in_a (v int)");
    assert_eq!(
        b.psql(
            "postgres",
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"
        ),
        "0"
    );
}

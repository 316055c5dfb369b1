//! The PostgreSQL schema, created and migrated by ragchat itself.
//!
//! Migrations are numbered and embedded in the binary; `ragchat_schema` records each
//! one applied. They run in one transaction under a transaction-scoped advisory lock,
//! so two processes starting at once on a fresh database are safe: the second waits
//! for the first, then finds nothing left to do. A database whose schema is newer
//! than this binary knows is refused, not downgraded.
//!
//! Every table's primary key starts with `user_id`, and every unique index includes
//! it, so the tables can be distributed by user (Citus: `create_distributed_table`
//! on `user_id`) without a change. `ragchat_schema` is not keyed by user: on Citus it
//! stays on the coordinator.

use tokio_postgres::Client;

/// The advisory lock key taken while migrating ("ragchat" in ASCII, as a number).
const MIGRATION_LOCK: i64 = 0x0072_6167_6368_6174;

/// `(version, SQL)`, in order; a version once released never changes.
///
/// 1. The tables.
/// 2. An index on last activity alone, for retention (`purge_idle`: the oldest idle
///    sessions of every user, a batch at a time).
/// 3. Search ([`crate::search`]): `search_terms`, a generated `tsvector` of the content
///    (English configuration, its first 100,000 characters: a `tsvector` holds at
///    most 1 MB) plus two scope lexemes, `@<user>` and `@<user>/<session>`, which no
///    English text produces; a GIN index on it. A search ANDs its terms with the
///    caller's scope lexeme, so the index reads only the caller's postings. Adding the
///    column computes it for the messages already stored (the table is rewritten
///    once); a generated column is always current: what a transaction writes or
///    deletes, its search sees. The index is built without `fastupdate`: with it,
///    inserts go to a pending list that the insert which fills it (4 MB) merges into
///    the index, a stall that made 500-message appends overrun the 2 s statement
///    timeout while measuring; without it every append pays its own share.
pub(super) const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        r#"
CREATE TABLE ragchat_sessions (
    user_id       text    COLLATE "C" NOT NULL,
    session_id    text    COLLATE "C" NOT NULL,
    created_at    bigint  NOT NULL,
    updated_at    bigint  NOT NULL,
    message_count bigint  NOT NULL DEFAULT 0,
    bytes         bigint  NOT NULL DEFAULT 0,
    last_seq      bigint  NOT NULL DEFAULT 0,
    trimmed_seq   bigint  NOT NULL DEFAULT 0,
    title         text,
    auto_title    text    NOT NULL DEFAULT '',
    PRIMARY KEY (user_id, session_id)
);
CREATE INDEX ragchat_sessions_by_activity
    ON ragchat_sessions (user_id, updated_at DESC, session_id DESC);
CREATE TABLE ragchat_messages (
    user_id    text   COLLATE "C" NOT NULL,
    session_id text   COLLATE "C" NOT NULL,
    seq        bigint NOT NULL,
    id         text   NOT NULL,
    role       text   NOT NULL,
    content    text   NOT NULL,
    sources    text   NOT NULL,
    created_at bigint NOT NULL,
    status     text   NOT NULL,
    bytes      bigint NOT NULL,
    PRIMARY KEY (user_id, session_id, seq)
);
CREATE UNIQUE INDEX ragchat_messages_by_id ON ragchat_messages (user_id, session_id, id);
CREATE TABLE ragchat_usage (
    user_id  text   COLLATE "C" NOT NULL PRIMARY KEY,
    sessions bigint NOT NULL DEFAULT 0,
    bytes    bigint NOT NULL DEFAULT 0
);
"#,
    ),
    (
        2,
        r#"
CREATE INDEX ragchat_sessions_by_last_activity ON ragchat_sessions (updated_at);
"#,
    ),
    (
        3,
        r#"
ALTER TABLE ragchat_messages ADD COLUMN search_terms tsvector GENERATED ALWAYS AS (
    to_tsvector('english'::regconfig, left(content, 100000))
    || array_to_tsvector(ARRAY['@' || user_id, '@' || user_id || '/' || session_id])
) STORED;
CREATE INDEX ragchat_messages_search ON ragchat_messages USING gin (search_terms)
    WITH (fastupdate = off);
"#,
    ),
];

/// The scope lexeme of a search (see migration 3), as `tsquery` input: quoted, so it
/// is taken as it is.
pub(super) fn scope_lexeme(user: &str, session: Option<&str>) -> String {
    match session {
        None => format!("'@{user}'"),
        Some(session) => format!("'@{user}/{session}'"),
    }
}

/// What preparing the schema did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Migrated {
    /// The version the database is at now.
    pub version: i32,
    /// How many migrations this call applied.
    pub applied: usize,
}

/// Brings the database up to the newest schema (see the module docs).
///
/// # Errors
/// [`SchemaError`]: the database's error, or a schema newer than this binary knows.
pub(super) async fn migrate(client: &mut Client) -> Result<Migrated, SchemaError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS ragchat_schema (
             version    integer     NOT NULL PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let current: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM ragchat_schema", &[])
        .await?
        .get(0);
    let newest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > newest {
        return Err(SchemaError::TooNew {
            found: current,
            known: newest,
        });
    }
    let mut applied = 0;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO ragchat_schema (version) VALUES ($1)",
            &[version],
        )
        .await?;
        applied += 1;
    }
    tx.commit().await?;
    Ok(Migrated {
        version: newest,
        applied,
    })
}

/// Why the schema could not be prepared.
#[derive(Debug)]
pub(super) enum SchemaError {
    /// The database refused or could not be reached.
    Db(tokio_postgres::Error),
    /// A newer ragchat migrated the database.
    TooNew {
        /// The database's version.
        found: i32,
        /// The newest this binary knows.
        known: i32,
    },
}

impl From<tokio_postgres::Error> for SchemaError {
    fn from(e: tokio_postgres::Error) -> Self {
        SchemaError::Db(e)
    }
}

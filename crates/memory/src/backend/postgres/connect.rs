//! Reaching PostgreSQL: the client configuration (timeouts, TLS), the bounded pool,
//! and what its errors mean to callers ([`MemoryError`]).

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use super::tls;
use crate::error::{MemoryError, Result};
use crate::spec::{redact_url, PostgresLocation, SslMode, StoreOptions};

/// Connections one store keeps open at most.
pub(super) const POOL_SIZE: usize = 16;

/// The pool and what the store shows of itself.
pub(super) struct Connected {
    pub pool: Pool,
    /// `postgres://host:port/db`: no credentials.
    pub identity: String,
}

/// Builds the pool (nothing is connected yet).
///
/// # Errors
/// `InvalidInput` for settings the client refuses; TLS setup errors likewise.
pub(super) fn pool(location: &PostgresLocation, opts: &StoreOptions) -> Result<Connected> {
    let shown = redact_url(location.url());
    let mut config: tokio_postgres::Config = location
        .client_url()
        .parse()
        .map_err(|e| MemoryError::invalid(format!("cannot read PostgreSQL URL {shown:?}: {e}")))?;
    config.connect_timeout(opts.connect_timeout);
    config.keepalives_idle(Duration::from_secs(30));
    let statement_ms = opts.command_timeout.as_millis().max(1);
    let mut options = config.get_options().unwrap_or_default().to_string();
    if !options.is_empty() {
        options.push(' ');
    }
    options.push_str(&format!(
        "-c statement_timeout={statement_ms} -c lock_timeout={statement_ms}"
    ));
    config.options(options);
    if config.get_application_name().is_none() {
        config.application_name("ragchat");
    }
    config.ssl_mode(match location.sslmode() {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
    });
    let identity = identity_of(&config);
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match location.sslmode() {
        SslMode::Disable => Manager::from_config(config, NoTls, manager_config),
        mode => Manager::from_config(
            config,
            tls::connector(mode, location.root_cert())?,
            manager_config,
        ),
    };
    let wait = opts.connect_timeout + opts.command_timeout;
    let pool = Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(wait))
        .create_timeout(Some(opts.connect_timeout))
        .recycle_timeout(Some(opts.command_timeout))
        .build()
        .map_err(|e| MemoryError::invalid(format!("cannot build the pool for {shown:?}: {e}")))?;
    Ok(Connected { pool, identity })
}

/// `postgres://host:port/database`, from the parsed configuration (never the password).
fn identity_of(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) if h.contains(':') => format!("[{h}]"),
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let database = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("postgres://{host}:{port}/{database}")
}

/// What a failed database call means: `Unavailable` (retryable) when the server could
/// not be reached or did not answer in time, `Storage` otherwise.
pub(super) fn classify(store: &str, e: &tokio_postgres::Error) -> MemoryError {
    let unavailable = match e.code() {
        None => true,
        Some(code) => {
            let c = code.code();
            c.starts_with("08") // connection exceptions
                || c.starts_with("57P") // admin shutdown, crash shutdown, cannot connect now
                || c.starts_with("53") // insufficient resources (too many connections, disk full)
                || *code == SqlState::QUERY_CANCELED // statement_timeout
                || *code == SqlState::LOCK_NOT_AVAILABLE // lock_timeout
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::READ_ONLY_SQL_TRANSACTION // a standby, during failover
        }
    };
    let reason = describe_error(e);
    if unavailable {
        MemoryError::Unavailable {
            store: store.to_string(),
            reason,
        }
    } else {
        MemoryError::Storage {
            store: store.to_string(),
            reason,
        }
    }
}

/// The error with its cause (tokio-postgres puts the useful part in the source).
fn describe_error(e: &tokio_postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => format!("{} ({})", db.message(), db.code().code()),
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    }
}

/// What a pool failure means: always `Unavailable` (no connection could be had in time),
/// but for settings the client refuses.
pub(super) fn classify_pool(store: &str, e: deadpool_postgres::PoolError) -> MemoryError {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Backend(e) => classify(store, &e),
        PoolError::Timeout(kind) => MemoryError::Unavailable {
            store: store.to_string(),
            reason: format!("no connection in time ({kind:?})"),
        },
        other => MemoryError::Unavailable {
            store: store.to_string(),
            reason: other.to_string(),
        },
    }
}

//! `postgres://` and `postgresql://` URLs: where the server is, and how TLS is used
//! (`sslmode`, `sslrootcert`), checked without connecting.
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | - |
//! | `prefer` (the default, as in libpq) | when the server offers it | not checked |
//! | `require` | always (refused without it) | not checked |
//! | `verify-full` | always | checked against the web PKI roots (or `sslrootcert=PATH`), and the host name |
//!
//! Every other query parameter goes to the client as it is (`application_name`,
//! `options`, ...); the URL, its password included, is never shown (see [`redact_url`]).

use std::path::PathBuf;

use crate::error::{MemoryError, Result};
use crate::spec::redact_url;

/// How a PostgreSQL connection uses TLS (`sslmode` in the URL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, without checking its certificate.
    Prefer,
    /// TLS always, without checking the server's certificate.
    Require,
    /// TLS always; the certificate must chain to a trusted root and name the host.
    VerifyFull,
}

impl SslMode {
    /// Reads the value of `sslmode`.
    ///
    /// # Errors
    /// `InvalidInput` naming the accepted values.
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-full" => Ok(SslMode::VerifyFull),
            "allow" | "verify-ca" => Err(MemoryError::invalid(format!(
                "sslmode={value} is not supported; use disable, prefer, require or verify-full"
            ))),
            other => Err(MemoryError::invalid(format!(
                "unknown sslmode {other:?}; use disable, prefer, require or verify-full"
            ))),
        }
    }
}

/// Where a PostgreSQL store lives. Shown (`Debug`) without credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresLocation {
    /// The URL as given, credentials included: never shown.
    url: String,
    /// The URL without the TLS settings, which the client library reads.
    client_url: String,
    sslmode: SslMode,
    root_cert: Option<PathBuf>,
}

impl PostgresLocation {
    /// Checks a `postgres://` or `postgresql://` URL.
    ///
    /// # Errors
    /// `InvalidInput` (with the password redacted) for a malformed URL or TLS setting.
    pub fn parse(url: &str) -> Result<Self> {
        let shown = redact_url(url);
        let parsed = url::Url::parse(url)
            .map_err(|e| MemoryError::invalid(format!("cannot parse {shown:?}: {e}")))?;
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(MemoryError::invalid(format!(
                "{shown:?} names no host; use postgres://USER:PASSWORD@HOST:5432/DATABASE"
            )));
        }
        let mut sslmode = SslMode::Prefer;
        let mut root_cert = None;
        let mut kept = Vec::new();
        for (key, value) in parsed.query_pairs() {
            match key.as_ref() {
                "sslmode" => sslmode = SslMode::parse(&value)?,
                "sslrootcert" => root_cert = Some(PathBuf::from(value.as_ref())),
                _ => kept.push((key.into_owned(), value.into_owned())),
            }
        }
        if root_cert.is_some() && sslmode != SslMode::VerifyFull {
            return Err(MemoryError::invalid(format!(
                "{shown:?}: sslrootcert is only used with sslmode=verify-full"
            )));
        }
        let mut client = parsed.clone();
        client.set_query(None);
        if !kept.is_empty() {
            client.query_pairs_mut().extend_pairs(kept);
        }
        Ok(PostgresLocation {
            url: url.to_string(),
            client_url: client.to_string(),
            sslmode,
            root_cert,
        })
    }

    /// The URL as given, credentials included (for connecting; show [`redact_url`] of it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL the client library reads: the one given, less `sslmode` and `sslrootcert`.
    pub fn client_url(&self) -> &str {
        &self.client_url
    }

    /// How TLS is used.
    pub fn sslmode(&self) -> SslMode {
        self.sslmode
    }

    /// The trusted root certificates (PEM) given with `sslrootcert`, if any.
    pub fn root_cert(&self) -> Option<&std::path::Path> {
        self.root_cert.as_deref()
    }
}

impl std::fmt::Debug for PostgresLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresLocation")
            .field("url", &redact_url(&self.url))
            .field("sslmode", &self.sslmode)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_is_read_from_the_query_and_taken_out_of_it() {
        let at = PostgresLocation::parse(
            "postgres://u:pw@db.example:5433/chat?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(at.sslmode(), SslMode::VerifyFull);
        assert_eq!(at.root_cert(), Some(std::path::Path::new("/etc/ca.pem")));
        assert_eq!(
            at.client_url(),
            "postgres://u:pw@db.example:5433/chat?application_name=x"
        );
        let plain = PostgresLocation::parse("postgresql://h/db").unwrap();
        assert_eq!(plain.sslmode(), SslMode::Prefer);
        assert_eq!(plain.client_url(), "postgresql://h/db");
        for (mode, want) in [
            ("disable", SslMode::Disable),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
        ] {
            let url = format!("postgres://h/db?sslmode={mode}");
            assert_eq!(PostgresLocation::parse(&url).unwrap().sslmode(), want);
        }
    }

    #[test]
    fn bad_tls_settings_are_refused_without_the_password() {
        for url in [
            "postgres://u:s3cret@h/db?sslmode=verify-ca",
            "postgres://u:s3cret@h/db?sslmode=sometimes",
            "postgres://u:s3cret@h/db?sslmode=require&sslrootcert=/ca.pem",
            "postgres://u:s3cret@/db",
        ] {
            let err = PostgresLocation::parse(url).unwrap_err();
            assert!(matches!(err, MemoryError::InvalidInput(_)), "{url}");
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
    }

    #[test]
    fn the_location_is_shown_without_its_password() {
        let at = PostgresLocation::parse("postgres://u:s3cret@h/db?sslmode=require").unwrap();
        let shown = format!("{at:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("Require"),
            "{shown}"
        );
        let at =
            PostgresLocation::parse("postgres://h/db?password=s3cret&sslmode=require").unwrap();
        let shown = format!("{at:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("sslmode=require"),
            "{shown}"
        );
    }
}

//! `rediss://`: ragchat talks TLS to a real redis-server with a certificate made for
//! the test by openssl; the client trusts it through `SSL_CERT_FILE`.

use std::path::Path;
use std::process::{Command, Output};

use ragchat_testkit::{free_port, RedisServer};

fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A CA and a server certificate for 127.0.0.1, or `None` without openssl.
fn make_certs(dir: &Path) -> Option<()> {
    let steps: [&[&str]; 4] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=ragchat-test-ca",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
        &["verify", "-CAfile", "ca.crt", "server.crt"],
    ];
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .ok()?;
    for step in steps {
        if !openssl(dir, step) {
            return None;
        }
    }
    Some(())
}

fn ragchat(data_dir: &Path, ca: Option<&Path>, url: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ragchat"));
    cmd.env_remove("RAGCHAT_STORE")
        .env("RAGCHAT_DATA_DIR", data_dir)
        .args(["--store", url])
        // A TLS handshake in a debug build on a busy machine can outlast the default
        // 250 ms store timeout; this test is about TLS, not about timeouts.
        .args(["--store-timeout-ms", "5000"])
        .args(args);
    match ca {
        Some(ca) => cmd.env("SSL_CERT_FILE", ca),
        None => cmd.env("SSL_CERT_FILE", data_dir.join("no-such-ca.crt")),
    };
    cmd.output().expect("run ragchat")
}

#[test]
fn rediss_with_a_trusted_certificate() {
    let certs = tempfile::tempdir().unwrap();
    if make_certs(certs.path()).is_none() {
        ragchat_testkit::skip("openssl not available");
        return;
    }
    let tls_port = free_port().to_string();
    let file = |name: &str| certs.path().join(name).display().to_string();
    let Some(server) = RedisServer::builder()
        .arg("--tls-port", tls_port.as_str())
        .arg("--tls-cert-file", file("server.crt"))
        .arg("--tls-key-file", file("server.key"))
        .arg("--tls-ca-cert-file", file("ca.crt"))
        .arg("--tls-auth-clients", "no")
        .start_or_skip()
    else {
        return;
    };
    let url = format!("rediss://127.0.0.1:{tls_port}");
    let data = tempfile::tempdir().unwrap();
    let ca = certs.path().join("ca.crt");

    let out = ragchat(
        data.path(),
        Some(&ca),
        &url,
        &["sessions", "add", "-u", "tls", "--json", "over TLS"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        added["journaled"], false,
        "the TLS store should have taken it: {added}"
    );
    let out = ragchat(
        data.path(),
        Some(&ca),
        &url,
        &["sessions", "stats", "-u", "tls", "--json"],
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["message_count"], 1);
    assert!(stats["store"].as_str().unwrap().starts_with("rediss://"));
    // It really went through TLS to this server: the plain port sees the same data.
    let keys = server.cli(&["KEYS", "ragchat:{tls}*"]);
    assert!(keys.contains("ragchat:{tls}:s:default:l"), "{keys}");

    // Without the CA the certificate is not trusted: a clear failure, nothing stored.
    let other = tempfile::tempdir().unwrap();
    let out = ragchat(other.path(), None, &url, &["sessions", "list", "-u", "tls"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

//! The few raw RESP exchanges the harness needs: the readiness check and a graceful `SHUTDOWN`.
//!
//! The harness talks to the server over a plain `TcpStream` rather than through a Redis client
//! crate so that it stays synchronous and dependency-free. Commands are sent as RESP arrays, so
//! passwords with spaces or quotes need no escaping.

use std::fmt;
use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// How long one connection attempt may take; the server is local, so this is generous.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// How long a readiness reply may take before the probe counts as "not yet".
const PROBE_REPLY_TIMEOUT: Duration = Duration::from_secs(1);

/// How long `SHUTDOWN` may take to answer; flushing a large AOF can take a moment.
const SHUTDOWN_REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Outcome of one readiness probe.
#[derive(Debug)]
pub(crate) enum Readiness {
    /// The server answered `PING` with `+PONG`.
    Ready,
    /// Not ready yet; the text says why (refused, `-LOADING`, ...).
    NotYet(String),
}

/// Checks once whether the server on `port` serves commands.
///
/// Authenticates when `password` is set and requires `+PONG` to `PING`: a server still loading
/// its data answers `-LOADING`, which counts as not ready.
pub(crate) fn probe(port: u16, password: Option<&str>) -> Readiness {
    match try_probe(port, password) {
        Ok(readiness) => readiness,
        Err(e) => Readiness::NotYet(e.to_string()),
    }
}

fn try_probe(port: u16, password: Option<&str>) -> io::Result<Readiness> {
    let mut conn = Connection::open(port, PROBE_REPLY_TIMEOUT)?;
    if let Some(password) = password {
        if let Reply::Error(e) = conn.command(&["AUTH", password])? {
            return Ok(Readiness::NotYet(format!("AUTH failed: {e}")));
        }
    }
    Ok(match conn.command(&["PING"])? {
        Reply::Simple(s) if s == "PONG" => Readiness::Ready,
        other => Readiness::NotYet(format!("PING answered {other}")),
    })
}

/// Sends `SHUTDOWN` to the server on `port` and waits until it closes the connection.
///
/// # Errors
///
/// The server's error reply (for example when it cannot write its data) or the I/O error.
pub(crate) fn request_shutdown(port: u16, password: Option<&str>) -> Result<(), String> {
    let mut conn = Connection::open(port, SHUTDOWN_REPLY_TIMEOUT)
        .map_err(|e| format!("cannot connect to send SHUTDOWN: {e}"))?;
    if let Some(password) = password {
        match conn.command(&["AUTH", password]) {
            Ok(Reply::Simple(_)) => {}
            Ok(reply) => return Err(format!("AUTH answered {reply}")),
            Err(e) => return Err(format!("AUTH failed: {e}")),
        }
    }
    // A successful SHUTDOWN never replies: the server closes the connection as it exits.
    match conn.command(&["SHUTDOWN"]) {
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(format!("SHUTDOWN failed: {e}")),
        Ok(Reply::Error(e)) => Err(format!("SHUTDOWN refused: {e}")),
        Ok(other) => Err(format!("SHUTDOWN answered {other}")),
    }
}

/// A reply, decoded only as far as the harness needs.
enum Reply {
    Simple(String),
    Error(String),
    /// Bulk strings, integers, arrays and anything else: the raw first line.
    Other(String),
}

/// One blocking connection to a local server.
struct Connection {
    stream: BufReader<TcpStream>,
}

impl Connection {
    fn open(port: u16, reply_timeout: Duration) -> io::Result<Self> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
        stream.set_read_timeout(Some(reply_timeout))?;
        stream.set_write_timeout(Some(reply_timeout))?;
        Ok(Self {
            stream: BufReader::new(stream),
        })
    }

    fn command(&mut self, args: &[&str]) -> io::Result<Reply> {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        self.stream.get_mut().write_all(&request)?;
        self.read_reply()
    }

    fn read_reply(&mut self) -> io::Result<Reply> {
        let line = self.read_line()?;
        Ok(if let Some(simple) = line.strip_prefix('+') {
            Reply::Simple(simple.to_owned())
        } else if let Some(error) = line.strip_prefix('-') {
            Reply::Error(error.to_owned())
        } else {
            Reply::Other(line)
        })
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        if self.stream.read_until(b'\n', &mut line)? == 0 {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "connection closed by the server",
            ));
        }
        let line = String::from_utf8_lossy(&line);
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Simple(s) => write!(f, "+{s}"),
            Self::Error(e) => write!(f, "-{e}"),
            Self::Other(line) => f.write_str(line),
        }
    }
}

//! [`TcpProxy`]: a loopback TCP relay that a test can cut, to make a real server
//! unreachable for one client while others still reach it (a network partition).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Relays `127.0.0.1:<port>` to an upstream address until cut.
///
/// While cut, open connections are closed and new ones are accepted and closed at
/// once, which a client sees as the server going away. Dropping the proxy stops it.
#[derive(Debug)]
pub struct TcpProxy {
    port: u16,
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    up: AtomicBool,
    stopped: AtomicBool,
    open: Mutex<Vec<TcpStream>>,
    /// One flag per relayed connection: while set, its bytes are held, not forwarded.
    stalls: Mutex<Vec<Arc<AtomicBool>>>,
}

impl TcpProxy {
    /// Starts relaying a free loopback port to `upstream`.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub fn start(upstream: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("bind a loopback port for the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let state = Arc::new(State {
            up: AtomicBool::new(true),
            stopped: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
            stalls: Mutex::new(Vec::new()),
        });
        let accept_state = Arc::clone(&state);
        thread::spawn(move || accept_loop(listener, upstream, accept_state));
        TcpProxy { port, state }
    }

    /// The proxy's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A `redis://` URL through the proxy.
    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Cuts the link: closes open connections and refuses new ones until [`TcpProxy::restore`].
    pub fn cut(&self) {
        self.state.up.store(false, Ordering::SeqCst);
        close_all(&self.state);
    }

    /// Lets connections through again (and releases stalled ones).
    pub fn restore(&self) {
        self.state.up.store(true, Ordering::SeqCst);
        self.set_stalled(false);
    }

    /// Freezes the connections open now, without closing them: their bytes are held
    /// (as a network does while TCP retransmits) until [`TcpProxy::restore`]. New
    /// connections go through. A client sees a connection that stopped answering.
    pub fn stall_open(&self) {
        self.set_stalled(true);
    }

    fn set_stalled(&self, stalled: bool) {
        for stall in self
            .state
            .stalls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            stall.store(stalled, Ordering::SeqCst);
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::SeqCst);
        close_all(&self.state);
    }
}

fn close_all(state: &State) {
    for stream in state
        .open
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
    {
        let _ = stream.shutdown(Shutdown::Both);
    }
}

fn accept_loop(listener: TcpListener, upstream: SocketAddr, state: Arc<State>) {
    while !state.stopped.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                if !state.up.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                if let Err(e) = relay(client, upstream, &state) {
                    eprintln!("testkit proxy: relay failed: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(2))
            }
            Err(e) => {
                eprintln!("testkit proxy: accept failed: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn relay(client: TcpStream, upstream: SocketAddr, state: &State) -> io::Result<()> {
    client.set_nonblocking(false)?;
    let server = TcpStream::connect_timeout(&upstream, Duration::from_secs(2))?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    {
        let mut open = state.open.lock().unwrap_or_else(|e| e.into_inner());
        open.push(client.try_clone()?);
        open.push(server.try_clone()?);
    }
    let stall = Arc::new(AtomicBool::new(false));
    state
        .stalls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::clone(&stall));
    let (c2, s2) = (client.try_clone()?, server.try_clone()?);
    let stall2 = Arc::clone(&stall);
    thread::spawn(move || pump(client, server, &stall));
    thread::spawn(move || pump(s2, c2, &stall2));
    Ok(())
}

fn pump(mut from: TcpStream, mut to: TcpStream, stall: &AtomicBool) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                while stall.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(2));
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

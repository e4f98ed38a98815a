//! A TCP proxy in front of a test server that can hold traffic, to put a near cache's tracking
//! connection and its pooled data connections in an exact order that the network only
//! produces now and then: refuse new tracking connections, hold the requests of data
//! connections, hold what the server sends to tracking connections (its invalidations).
//!
//! A connection is taken for a tracking connection when its first bytes name
//! [`TRACKING_CLIENT_NAME`] (its handshake sets that name); every other one is a data
//! connection.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use redis_caches::connection::TRACKING_CLIENT_NAME;

#[derive(Default)]
struct Switches {
    refuse_tracking: AtomicBool,
    hold_data_requests: AtomicBool,
    hold_tracking_pushes: AtomicBool,
    /// Chunks of data connections' requests waiting for `hold_data_requests` to be off.
    held_requests: AtomicUsize,
}

/// A proxy on a free loopback port that forwards to `127.0.0.1:<port>`. Its threads end
/// with the test process.
pub struct Proxy {
    port: u16,
    switches: Arc<Switches>,
}

impl Proxy {
    pub fn start(server_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let switches = Arc::new(Switches::default());
        let shared = switches.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", server_port)) else {
                    continue;
                };
                let switches = shared.clone();
                std::thread::spawn(move || serve(client, server, switches));
            }
        });
        Proxy { port, switches }
    }

    /// A URL of the proxied server, with DSN query options.
    pub fn url_with(&self, query: &str) -> String {
        format!("redis://127.0.0.1:{}/0?{query}", self.port)
    }

    /// New tracking connections are closed at their handshake (they fail to open).
    pub fn refuse_tracking(&self, on: bool) {
        self.switches.refuse_tracking.store(on, Ordering::SeqCst);
    }

    /// Requests of data connections wait in the proxy (the server has not run them).
    pub fn hold_data_requests(&self, on: bool) {
        self.switches.hold_data_requests.store(on, Ordering::SeqCst);
    }

    /// What the server sends to tracking connections (replies and invalidations) waits in
    /// the proxy.
    pub fn hold_tracking_pushes(&self, on: bool) {
        self.switches
            .hold_tracking_pushes
            .store(on, Ordering::SeqCst);
    }

    /// How many chunks of data connections' requests are held now.
    pub fn held_requests(&self) -> usize {
        self.switches.held_requests.load(Ordering::SeqCst)
    }
}

fn serve(mut client: TcpStream, mut server: TcpStream, switches: Arc<Switches>) {
    let mut first = vec![0u8; 64 * 1024];
    let n = match client.read(&mut first) {
        Ok(0) | Err(_) => return,
        Ok(n) => n,
    };
    let name = TRACKING_CLIENT_NAME.as_bytes();
    let tracking = first[..n].windows(name.len()).any(|w| w == name);
    if tracking && switches.refuse_tracking.load(Ordering::SeqCst) {
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
        return;
    }
    let (Ok(client_reader), Ok(server_reader)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let down = switches.clone();
    // Server to client: held for tracking connections while asked.
    std::thread::spawn(move || {
        pump(server_reader, client, |_| {
            while tracking && down.hold_tracking_pushes.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    });
    // Client to server, starting with the chunk already read: held for data connections
    // while asked.
    let hold = |switches: &Switches| {
        if !tracking && switches.hold_data_requests.load(Ordering::SeqCst) {
            switches.held_requests.fetch_add(1, Ordering::SeqCst);
            while switches.hold_data_requests.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            switches.held_requests.fetch_sub(1, Ordering::SeqCst);
        }
    };
    hold(&switches);
    if server.write_all(&first[..n]).is_err() {
        return;
    }
    pump(client_reader, server, |_| hold(&switches));
}

/// Copies `from` to `to`, calling `before` with each chunk before it is written.
fn pump(mut from: TcpStream, mut to: TcpStream, before: impl Fn(&[u8])) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        before(&buf[..n]);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

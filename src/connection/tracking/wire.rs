//! A tracking connection's socket (TCP or Unix) and its RESP3 parser, with the handshake
//! that turns tracking on.

use std::io::{self, Read, Write};
use std::net::TcpStream;
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::time::Duration;

use redis::Value;

use super::TRACKING_CLIENT_NAME;
use crate::connection::node::NodeSettings;
use crate::deadline::Deadline;

/// A tracking connection's socket and its RESP3 parser.
///
/// The parser keeps a partial value across reads that time out, so waking up every
/// [`WAKE_EVERY`](super::WAKE_EVERY) loses nothing.
pub(super) struct Wire {
    pub(super) stream: Stream,
    pub(super) parser: redis::Parser,
}

impl Wire {
    pub(super) fn next(&mut self) -> io::Result<Value> {
        match self.parser.parse_value(&mut self.stream) {
            Ok(v) => Ok(v),
            Err(e) => Err(match e.kind() {
                redis::ErrorKind::Io => {
                    let kind = if e.is_timeout() {
                        io::ErrorKind::TimedOut
                    } else {
                        io::ErrorKind::ConnectionAborted
                    };
                    io::Error::new(kind, e.to_string())
                }
                _ => io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
            }),
        }
    }

    /// `HELLO 3` (with the credentials), `SELECT`, `CLIENT TRACKING ON`, checking each reply,
    /// within `deadline`; with `check_role`, `ROLE` too, refusing a server that is not a
    /// master (a sentinel may name a master that was just demoted).
    pub(super) fn handshake(
        &mut self,
        settings: &NodeSettings,
        check_role: bool,
        deadline: &Deadline,
    ) -> io::Result<()> {
        let mut pipe = redis::pipe();
        {
            let hello = pipe.cmd("HELLO").arg(3);
            if let Some(password) = &settings.password {
                hello
                    .arg("AUTH")
                    .arg(settings.username.as_deref().unwrap_or("default"))
                    .arg(password);
            }
            hello.arg("SETNAME").arg(TRACKING_CLIENT_NAME);
        }
        if settings.db != 0 {
            pipe.cmd("SELECT").arg(settings.db);
        }
        pipe.cmd("CLIENT").arg("TRACKING").arg("ON");
        if check_role {
            pipe.cmd("ROLE");
        }
        self.stream.write_all(&pipe.get_packed_pipeline())?;
        for i in 0..pipe.len() {
            let left = deadline
                .remaining()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))?;
            self.stream.set_read_timeout(Some(left))?;
            match self.next()? {
                Value::ServerError(e) => {
                    // Never the password: the server's error code and text only.
                    return Err(io::Error::other(format!(
                        "the tracking connection was refused: {}",
                        e.code()
                    )));
                }
                Value::Push { .. } => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "unexpected push during the handshake",
                    ));
                }
                Value::Array(role) if check_role && i + 1 == pipe.len() => {
                    let is_master =
                        matches!(role.first(), Some(Value::BulkString(r)) if r == b"master");
                    if !is_master {
                        return Err(io::Error::other("the server is not a master"));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A TCP or Unix socket.
pub(super) enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Stream {
    pub(super) fn tcp(host: &str, port: u16, deadline: &Deadline) -> io::Result<Stream> {
        use std::net::ToSocketAddrs;
        let mut last = io::Error::from(io::ErrorKind::AddrNotAvailable);
        for addr in (host, port).to_socket_addrs()? {
            let budget = deadline
                .remaining()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))?;
            match TcpStream::connect_timeout(&addr, budget) {
                Ok(s) => {
                    s.set_nodelay(true)?;
                    return Ok(Stream::Tcp(s));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    #[cfg(unix)]
    pub(super) fn unix(path: &std::path::Path, _deadline: &Deadline) -> io::Result<Stream> {
        UnixStream::connect(path).map(Stream::Unix)
    }

    pub(super) fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            #[cfg(unix)]
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
        })
    }

    pub(super) fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(d),
            #[cfg(unix)]
            Stream::Unix(s) => s.set_read_timeout(d),
        }
    }

    pub(super) fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(d),
            #[cfg(unix)]
            Stream::Unix(s) => s.set_write_timeout(d),
        }
    }

    pub(super) fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            #[cfg(unix)]
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            #[cfg(unix)]
            Stream::Unix(s) => s.flush(),
        }
    }
}

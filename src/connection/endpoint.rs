//! Clients for the addresses a DSN leads to (a server, cluster nodes, sentinels, a master),
//! with the DSN's TLS settings.

use crate::dsn::Dsn;
use crate::error::{Error, Result};

/// Makes `redis` clients for `host:port` addresses with the DSN's TLS settings, if any.
pub(crate) struct Endpoints {
    tls: Option<TlsSetup>,
}

/// The TLS settings of a `rediss` DSN, with its certificate files read.
struct TlsSetup {
    insecure: bool,
    #[cfg(feature = "tls")]
    certs: redis::TlsCertificates,
}

impl Endpoints {
    /// Reads the DSN's TLS files, if any.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for TLS without the `tls` feature, or a file that cannot be read.
    pub(crate) fn new(name: &str, dsn: &Dsn) -> Result<Endpoints> {
        let tls = match dsn.tls() {
            None => None,
            Some(tls) => Some(tls_setup(name, tls)?),
        };
        Ok(Endpoints { tls })
    }

    /// The configuration error for a client that cannot be built.
    pub(crate) fn setup_error(&self, name: &str, e: &redis::RedisError) -> Error {
        match self.tls {
            Some(_) => Error::config(name, format!("TLS setup failed: {e}")),
            None => Error::config(name, e.to_string()),
        }
    }

    fn addr(&self, host: &str, port: u16) -> redis::ConnectionAddr {
        match &self.tls {
            None => redis::ConnectionAddr::Tcp(host.to_string(), port),
            Some(tls) => redis::ConnectionAddr::TcpTls {
                host: host.to_string(),
                port,
                insecure: tls.insecure,
                tls_params: None,
            },
        }
    }

    /// A client for `host:port` with `settings` (see
    /// [`NodeSettings::redis_info`](super::node::NodeSettings::redis_info)).
    pub(crate) fn client(
        &self,
        host: &str,
        port: u16,
        settings: redis::RedisConnectionInfo,
    ) -> redis::RedisResult<redis::Client> {
        let info = redis::IntoConnectionInfo::into_connection_info(self.addr(host, port))?
            .set_redis_settings(settings);
        match &self.tls {
            None => redis::Client::open(info),
            #[cfg(feature = "tls")]
            Some(tls) => redis::Client::build_with_tls(info, tls.certs.clone()),
            #[cfg(not(feature = "tls"))]
            Some(_) => redis::Client::open(info),
        }
    }

    /// A client for a Unix socket.
    pub(crate) fn unix_client(
        path: &std::path::Path,
        settings: redis::RedisConnectionInfo,
    ) -> redis::RedisResult<redis::Client> {
        let info = redis::IntoConnectionInfo::into_connection_info(redis::ConnectionAddr::Unix(
            path.to_path_buf(),
        ))?
        .set_redis_settings(settings);
        redis::Client::open(info)
    }
}

#[cfg(feature = "tls")]
fn tls_setup(name: &str, tls: &crate::dsn::TlsOptions) -> Result<TlsSetup> {
    // rustls panics at the first handshake when the process has no default crypto provider
    // and cannot pick one from its crate features (none enabled by `redis`, or both `ring`
    // and `aws-lc-rs` enabled by the application). Install ring unless the application
    // installed one already; losing that race to another thread is fine.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let read = |what: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| {
            Error::config(
                name,
                format!("cannot read the {what} file {}: {e}", path.display()),
            )
        })
    };
    let root_cert = tls
        .ca_file
        .as_deref()
        .map(|p| read("tls_ca", p))
        .transpose()?;
    let client_tls = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read("tls_cert", cert)?,
            client_key: read("tls_key", key)?,
        }),
        _ => None,
    };
    Ok(TlsSetup {
        insecure: tls.insecure,
        certs: redis::TlsCertificates {
            client_tls,
            root_cert,
        },
    })
}

#[cfg(not(feature = "tls"))]
fn tls_setup(name: &str, _: &crate::dsn::TlsOptions) -> Result<TlsSetup> {
    Err(Error::config(
        name,
        "rediss:// needs the crate feature \"tls\" (redis-caches = { features = [\"tls\"] })",
    ))
}

//! The bridge's errors.

use memlink_shm::OpenError;

use crate::refusal::Refusal;

/// Why a bridge or a remote client could not start or go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// Zenoh refused the configuration or could not open a session.
    #[error("zenoh: {0}; check the endpoints and the --config file")]
    Zenoh(String),
    /// The configuration file could not be read or parsed.
    #[error("zenoh configuration {path}: {reason}")]
    Config {
        /// The file.
        path: String,
        /// What was wrong with it.
        reason: String,
    },
    /// TLS files were given, but an endpoint is not a `tls/` one (it would
    /// carry the segment in the clear).
    #[error("TLS files are given, but endpoint {endpoint} is not a tls/ endpoint: write tls/HOST:PORT")]
    NotTls {
        /// The endpoint.
        endpoint: String,
    },
    /// A TLS certificate was given without the CA that signs the peers'.
    #[error("a TLS certificate is given without a CA: give the CA that signs the peers' certificates (--tls-ca)")]
    TlsWithoutCa,
    /// The local segment could not be created or connected to.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// No export of this segment answered in time.
    #[error("no export of segment {0} answered: start `memlink bridge export` on the daemon's host, and check the endpoints")]
    NoExport(String),
    /// The export answered, but could not attach this client to its daemon.
    #[error("the export refused the client: {0}")]
    Refused(Refusal),
}

impl BridgeError {
    pub(crate) fn zenoh(e: impl std::fmt::Display) -> BridgeError {
        BridgeError::Zenoh(e.to_string())
    }
}

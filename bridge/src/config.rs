//! How a bridge or a remote client reaches its peers: Zenoh endpoints,
//! mutual TLS, an optional Zenoh configuration file, and the lease that
//! bounds how long a silent peer counts as alive.

use std::path::PathBuf;
use std::time::Duration;

use zenoh::Config;

use crate::error::BridgeError;

/// Where and how to meet the other side over Zenoh.
///
/// By default a peer with the given endpoints and nothing else: it listens
/// only where [`BridgeConfig::listen`] says (Zenoh's own default, a TCP
/// port on every interface, is turned off), no multicast or gossip
/// scouting, no router. [`BridgeConfig::tls_ca`] and
/// [`BridgeConfig::tls_identity`] turn on mutual TLS for `tls/` endpoints.
/// A [`BridgeConfig::file`] supplies everything else Zenoh can do (routers,
/// access control); the endpoints, TLS files and lease given here are
/// applied on top of it (a file's own listeners and scouting are its own).
///
/// Mutual TLS, on both sides (each peer's certificate signed by the CA):
///
/// ```
/// use memlink_bridge::BridgeConfig;
/// let export = BridgeConfig::default()
///     .listen("tls/0.0.0.0:7447")
///     .tls_ca("ca.pem")
///     .tls_identity("export.pem", "export.key");
/// let import = BridgeConfig::default()
///     .connect("tls/10.0.0.1:7447")
///     .tls_ca("ca.pem")
///     .tls_identity("import.pem", "import.key");
/// # let _ = (export, import);
/// ```
///
/// ```
/// use memlink_bridge::BridgeConfig;
/// use std::time::Duration;
/// let config = BridgeConfig::default()
///     .connect("tcp/127.0.0.1:7447")
///     .lease(Duration::from_secs(2));
/// assert_eq!(config.lease_or_default(), Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, Default)]
pub struct BridgeConfig {
    listen: Vec<String>,
    connect: Vec<String>,
    file: Option<PathBuf>,
    lease: Option<Duration>,
    tls_ca: Option<PathBuf>,
    tls_identity: Option<(PathBuf, PathBuf)>,
}

/// Zenoh's own default lease.
const DEFAULT_LEASE: Duration = Duration::from_secs(10);

impl BridgeConfig {
    /// Listens on a Zenoh locator (`tcp/0.0.0.0:7447`, `unixsock-stream/PATH`, ...).
    pub fn listen(mut self, endpoint: impl Into<String>) -> Self {
        self.listen.push(endpoint.into());
        self
    }

    /// Connects to a Zenoh locator, and keeps reconnecting when the link is
    /// lost.
    pub fn connect(mut self, endpoint: impl Into<String>) -> Self {
        self.connect.push(endpoint.into());
        self
    }

    /// Starts from this Zenoh configuration file (JSON5) instead of a bare
    /// peer.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// Trusts the peers whose certificates this CA (a PEM file) signed, and
    /// only them, on `tls/` endpoints: every endpoint must then be a `tls/`
    /// one.
    pub fn tls_ca(mut self, ca: impl Into<PathBuf>) -> Self {
        self.tls_ca = Some(ca.into());
        self
    }

    /// This side's certificate and private key (PEM files), signed by the
    /// [`BridgeConfig::tls_ca`]: shown to the peers, and required of them
    /// (mutual TLS). A side that listens needs one; a side that connects
    /// without one is refused by a listener that has one.
    pub fn tls_identity(mut self, certificate: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls_identity = Some((certificate.into(), key.into()));
        self
    }

    /// How long a peer may stay silent before it counts as gone (its
    /// clients depart, its daemon disconnects): Zenoh's link lease, 10 s by
    /// default. A peer that crashes is seen at once (its socket closes); the
    /// lease bounds only silent failures, such as a cut network.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = Some(lease);
        self
    }

    /// The lease in force.
    pub fn lease_or_default(&self) -> Duration {
        self.lease.unwrap_or(DEFAULT_LEASE)
    }

    pub(crate) fn to_zenoh(&self) -> Result<Config, BridgeError> {
        let mut config = match &self.file {
            Some(path) => Config::from_file(path).map_err(|e| BridgeError::Config {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?,
            None => {
                let mut c = Config::default();
                set(&mut c, "scouting/multicast/enabled", "false")?;
                set(&mut c, "scouting/gossip/enabled", "false")?;
                // Zenoh's peer listens on a TCP port of every interface by
                // default: a way in that bypasses TLS. Only --listen.
                set(&mut c, "listen/endpoints", "[]")?;
                c
            }
        };
        set(&mut config, "mode", "\"peer\"")?;
        if !self.listen.is_empty() {
            set(&mut config, "listen/endpoints", &json_list(&self.listen))?;
        }
        self.set_tls(&mut config)?;
        if !self.connect.is_empty() {
            set(&mut config, "connect/endpoints", &json_list(&self.connect))?;
            // Open at once and retry in the background, also after a lost
            // link: a bridge waits for its peer instead of failing.
            set(&mut config, "connect/timeout_ms", "0")?;
            set(&mut config, "connect/exit_on_failure", "false")?;
            set(
                &mut config,
                "connect/retry",
                "{period_init_ms: 200, period_max_ms: 1000, period_increase_factor: 2}",
            )?;
        }
        if let Some(lease) = self.lease {
            let ms = lease.as_millis().clamp(100, u128::from(u32::MAX));
            set(&mut config, "transport/link/tx/lease", &ms.to_string())?;
        }
        Ok(config)
    }
}

impl BridgeConfig {
    fn set_tls(&self, config: &mut Config) -> Result<(), BridgeError> {
        if self.tls_ca.is_none() && self.tls_identity.is_none() {
            return Ok(());
        }
        if let Some(endpoint) = self.listen.iter().chain(&self.connect).find(|e| !e.starts_with("tls/")) {
            return Err(BridgeError::NotTls {
                endpoint: endpoint.clone(),
            });
        }
        let Some(ca) = &self.tls_ca else {
            return Err(BridgeError::TlsWithoutCa);
        };
        let key = "transport/link/tls";
        set(config, &format!("{key}/root_ca_certificate"), &json_path(ca))?;
        set(config, &format!("{key}/verify_name_on_connect"), "true")?;
        match &self.tls_identity {
            Some((certificate, private_key)) => {
                set(config, &format!("{key}/enable_mtls"), "true")?;
                for side in ["listen", "connect"] {
                    set(config, &format!("{key}/{side}_certificate"), &json_path(certificate))?;
                    set(config, &format!("{key}/{side}_private_key"), &json_path(private_key))?;
                }
            }
            None => set(config, &format!("{key}/enable_mtls"), "false")?,
        }
        Ok(())
    }
}

fn json_path(path: &std::path::Path) -> String {
    json_string(&path.to_string_lossy())
}

fn json_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn set(config: &mut Config, key: &str, value: &str) -> Result<(), BridgeError> {
    config
        .insert_json5(key, value)
        .map_err(|e| BridgeError::Zenoh(format!("setting {key} = {value}: {e}")))
}

fn json_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| json_string(s)).collect();
    format!("[{}]", quoted.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_lease_reach_the_zenoh_configuration() {
        let config = BridgeConfig::default()
            .listen("tcp/127.0.0.1:0")
            .connect("tcp/127.0.0.1:7447")
            .lease(Duration::from_millis(1500))
            .to_zenoh()
            .expect("valid configuration");
        let json = format!("{config}");
        assert!(json.contains("tcp/127.0.0.1:7447"), "{json}");
        assert!(json.contains("1500"), "{json}");
    }

    #[test]
    fn tls_files_reach_the_zenoh_configuration_and_plain_endpoints_are_refused() {
        let tls = BridgeConfig::default()
            .listen("tls/127.0.0.1:0")
            .tls_ca("/certs/ca.pem")
            .tls_identity("/certs/me.pem", "/certs/me.key");
        let json = format!("{}", tls.clone().to_zenoh().expect("valid configuration"));
        for part in ["/certs/ca.pem", "/certs/me.pem", "/certs/me.key"] {
            assert!(json.contains(part), "{part} missing from {json}");
        }
        let plain = tls.connect("tcp/127.0.0.1:7447").to_zenoh().unwrap_err();
        assert!(
            matches!(&plain, BridgeError::NotTls { endpoint } if endpoint == "tcp/127.0.0.1:7447"),
            "{plain}"
        );
        let no_ca = BridgeConfig::default()
            .connect("tls/127.0.0.1:7447")
            .tls_identity("a", "b")
            .to_zenoh()
            .unwrap_err();
        assert!(matches!(no_ca, BridgeError::TlsWithoutCa), "{no_ca}");
    }

    #[test]
    fn a_missing_file_is_a_config_error() {
        let err = BridgeConfig::default()
            .file("/nonexistent/zenoh.json5")
            .to_zenoh()
            .unwrap_err();
        assert!(matches!(err, BridgeError::Config { .. }), "{err}");
    }
}

//! How a bridge or a remote client reaches its peers: Zenoh endpoints, an
//! optional Zenoh configuration file, and the lease that bounds how long a
//! silent peer counts as alive.

use std::path::PathBuf;
use std::time::Duration;

use zenoh::Config;

use crate::error::BridgeError;

/// Where and how to meet the other side over Zenoh.
///
/// By default a peer with the given endpoints and nothing else: no
/// multicast scouting, no router. A [`BridgeConfig::file`] supplies
/// everything else Zenoh can do (routers, TLS, access control); the
/// endpoints and lease given here are applied on top of it.
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
                c
            }
        };
        set(&mut config, "mode", "\"peer\"")?;
        if !self.listen.is_empty() {
            set(&mut config, "listen/endpoints", &json_list(&self.listen))?;
        }
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

fn set(config: &mut Config, key: &str, value: &str) -> Result<(), BridgeError> {
    config
        .insert_json5(key, value)
        .map_err(|e| BridgeError::Zenoh(format!("setting {key} = {value}: {e}")))
}

fn json_list(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
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
    fn a_missing_file_is_a_config_error() {
        let err = BridgeConfig::default()
            .file("/nonexistent/zenoh.json5")
            .to_zenoh()
            .unwrap_err();
        assert!(matches!(err, BridgeError::Config { .. }), "{err}");
    }
}

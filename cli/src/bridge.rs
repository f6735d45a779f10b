//! `memlink bridge export|import`: the Zenoh bridge of `memlink-bridge`,
//! run until the process is stopped.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use memlink_bridge::{BridgeConfig, ClientCounts, Export, Import};

use crate::failure::Failure;

/// Which side of the bridge this process is.
#[derive(Debug, Subcommand)]
pub enum Side {
    /// On the daemon's host: serves segment NAME to remote clients and
    /// imports (its daemon may start later).
    Export {
        /// The segment to serve.
        name: String,
        #[command(flatten)]
        net: Net,
    },
    /// On another host: creates local segment NAME (or --as LOCAL) with the
    /// remote daemon's shape, whose clients reach the remote daemon. The
    /// segment exists while the export and its daemon are reachable.
    Import {
        /// The remote segment.
        name: String,
        /// The local segment's name (default: NAME).
        #[arg(long = "as", value_name = "LOCAL")]
        local: Option<String>,
        #[command(flatten)]
        net: Net,
    },
}

/// Where to meet the other side.
#[derive(Debug, Args)]
pub struct Net {
    /// Listen on this Zenoh locator, e.g. tcp/0.0.0.0:7447 (repeatable).
    #[arg(long, value_name = "ENDPOINT")]
    listen: Vec<String>,
    /// Connect to this Zenoh locator, e.g. tcp/10.0.0.1:7447 (repeatable);
    /// reconnects when the link is lost.
    #[arg(long, value_name = "ENDPOINT")]
    connect: Vec<String>,
    /// A Zenoh configuration file (JSON5) for everything else: routers,
    /// access control, scouting. The endpoints and TLS files here apply on
    /// top of it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Mutual TLS: trust only peers whose certificate this CA (PEM) signed.
    /// Every endpoint must then be tls/HOST:PORT.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Mutual TLS: this side's certificate (PEM), signed by --tls-ca; shown
    /// to peers, and required of them. Needed to listen.
    #[arg(long, value_name = "FILE", requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<PathBuf>,
    /// Mutual TLS: the private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// How long a silent peer counts as alive, in milliseconds (Zenoh's
    /// lease; a crashed peer is seen at once).
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    lease: u64,
    /// Print a status line (each client's messages taken, delivered and
    /// refused) every SECS seconds when it changed; 0: never.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    status: u64,
}

impl Net {
    fn config(&self) -> BridgeConfig {
        let mut config = BridgeConfig::default().lease(Duration::from_millis(self.lease));
        for endpoint in &self.listen {
            config = config.listen(endpoint);
        }
        for endpoint in &self.connect {
            config = config.connect(endpoint);
        }
        if let Some(file) = &self.config {
            config = config.file(file);
        }
        if let Some(ca) = &self.tls_ca {
            config = config.tls_ca(ca);
        }
        if let (Some(certificate), Some(key)) = (&self.tls_cert, &self.tls_key) {
            config = config.tls_identity(certificate, key);
        }
        config
    }
}

pub fn run(side: Side) -> Result<(), Failure> {
    let fail = |e| Failure::io("memlink bridge", e);
    memlink_bridge::zenoh_log_from_env();
    match side {
        Side::Export { name, net } => {
            let listen = net.listen.join(", ");
            let export = Export::start(&name, net.config()).map_err(fail)?;
            let on = if listen.is_empty() {
                String::new()
            } else {
                format!(" on {listen}")
            };
            match export.shape() {
                Some(shape) => ready(&format!("exporting {name}{on}: {shape}")),
                None => ready(&format!(
                    "exporting {name}{on}: no daemon runs on it yet (served once one starts)"
                )),
            }
            serve(net.status, || export.counts())
        }
        Side::Import { name, local, net } => {
            let local = local.unwrap_or_else(|| name.clone());
            let import = Import::start(&name, &local, net.config()).map_err(fail)?;
            ready(&format!("importing {name} as {local}"));
            serve(net.status, || import.counts())
        }
    }
}

/// Serves until the process ends, printing the status line every
/// `every` seconds when it changed.
fn serve(every: u64, counts: impl Fn() -> Vec<ClientCounts>) -> ! {
    let mut last = Vec::new();
    loop {
        if every == 0 {
            std::thread::park();
            continue;
        }
        std::thread::sleep(Duration::from_secs(every));
        let now = counts();
        if now != last {
            let clients: Vec<String> = now.iter().map(ToString::to_string).collect();
            ready(&format!("status: {} clients; {}", now.len(), clients.join("; ")));
            last = now;
        }
    }
}

/// Says the bridge is up (a line scripts and tests wait for).
fn ready(what: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "memlink bridge: {what}");
    let _ = out.flush();
}

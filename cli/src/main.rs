//! `memlink`: list, inspect, watch and clean memlink-shm segments, and
//! measure a round trip, from the command line.
//!
//! Every command that reads a segment goes through
//! `memlink_shm::inspect`, which maps it read-only, claims no slot, takes no
//! lock and writes nothing: running `memlink` against a live service never
//! disturbs it. See `memlink --help` and the README's section "The memlink
//! tool" for the output formats and exit codes.

mod bench;
#[cfg(feature = "bridge")]
mod bridge;
mod clean;
mod failure;
mod inspect;
mod list;
mod report;
mod top;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// List, inspect, watch and clean memlink-shm segments.
///
/// Exit codes: 0 success; 1 an I/O or terminal error; 2 a usage error;
/// 3 no such segment; 4 permission denied (another user owns it);
/// 5 not a memlink segment, or one of an incompatible layout.
#[derive(Debug, Parser)]
#[command(name = "memlink", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every memlink segment in the default directory (and those given):
    /// name, size, protocol version, daemon pid and liveness, clients,
    /// poisoned channels, age of the daemon's heartbeat.
    Ls {
        /// Also look in this directory (repeatable).
        #[arg(long = "dir", value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Print JSON (schema in the README) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The control region and every slot of segment NAME: pids, liveness,
    /// ring fill per tier and direction, counters, wake-ups, poison.
    Inspect {
        /// A segment name, or a path for segments given as paths.
        name: String,
        /// Print JSON (same as `--format json`).
        #[arg(long)]
        json: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// A live view of segment NAME: rates per tier and per client, fill
    /// bars, wake-ups per second, updated every second. Quit with q.
    Top {
        /// A segment name, or a path.
        name: String,
        /// Refresh period in milliseconds.
        #[arg(long, default_value_t = 1000, value_name = "MS")]
        interval: u64,
    },
    /// Removes segments and build leftovers whose creator is dead, and
    /// stale memlink PID files; never anything a live process holds or
    /// another user owns. Says what it removed.
    Clean {
        /// Say what would be removed, and remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Clean this directory instead of the default one (repeatable).
        #[arg(long = "dir", value_name = "DIR")]
        dirs: Vec<PathBuf>,
    },
    /// Round trips and a one-way stream between this process and a child
    /// process it starts, through a fresh segment: the figures of the
    /// `p2` example in one command.
    Bench {
        /// A tenth of the iterations.
        #[arg(long)]
        quick: bool,
    },
    /// Carries segment NAME over Zenoh to other hosts: `export` on the
    /// daemon's host, `import` on each other host (README: "Beyond one
    /// machine").
    #[cfg(feature = "bridge")]
    Bridge {
        // Boxed: its flags (endpoints, TLS files) make it the largest
        // command by far.
        #[command(subcommand)]
        side: Box<bridge::Side>,
    },
    /// Carries segment NAME over Zenoh to other hosts: not in this build
    /// (it needs the `bridge` feature, which builds zenoh:
    /// `cargo install --path cli --features bridge`).
    #[cfg(not(feature = "bridge"))]
    #[command(disable_help_flag = true)]
    Bridge {
        /// Whatever was given; `memlink bridge` only says how to get it.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
    /// The client side of `bench` (started by it).
    #[command(hide = true)]
    BenchClient { name: String },
}

/// How `inspect` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// For people.
    Text,
    /// The JSON schema of the README.
    Json,
    /// Prometheus text exposition format (for node_exporter's textfile collector).
    Prometheus,
}

/// What `memlink bridge` says in a build without the `bridge` feature.
#[cfg(not(feature = "bridge"))]
const NO_BRIDGE: &str = "this memlink was built without the bridge (the `bridge` feature, which builds zenoh); \
     install one with it: `cargo install --path cli --features bridge` (from the repository), \
     or run it from the repository: `cargo run -p memlink-cli --features bridge -- bridge ...`";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let done = match cli.command {
        Command::Ls { dirs, json } => list::run(&dirs, json),
        Command::Inspect { name, json, format } => {
            let format = if json { Format::Json } else { format };
            inspect::run(&name, format)
        }
        Command::Top { name, interval } => top::run(&name, interval),
        Command::Clean { dry_run, dirs } => clean::run(&dirs, dry_run),
        Command::Bench { quick } => bench::run(quick),
        Command::BenchClient { name } => bench::client(&name),
        #[cfg(feature = "bridge")]
        Command::Bridge { side } => bridge::run(*side),
        #[cfg(not(feature = "bridge"))]
        Command::Bridge { .. } => {
            eprintln!("memlink: {NO_BRIDGE}");
            return ExitCode::from(2);
        }
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("memlink: {f}");
            f.exit_code()
        }
    }
}

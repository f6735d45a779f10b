//! The daemon of a request/reply service: answers each request with its text
//! in upper case. Run it, then `cargo run --example client` in another
//! terminal (as often as you like; several at once work too).
//!
//! ```sh
//! cargo run --example daemon                 # serves until Ctrl-C
//! cargo run --example daemon -- NAME --until-idle
//! ```

mod echo;

use memlink_shm::Daemon;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let until_idle = args.iter().any(|a| a == "--until-idle");
    let name = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map_or(echo::DEFAULT_NAME, String::as_str);
    let mut daemon = Daemon::create(name)?;
    println!(
        "daemon: serving {name} ({} client slots, messages up to {} bytes)",
        daemon.control().max_clients(),
        daemon.control().max_message_size()
    );
    let served = echo::serve(&mut daemon, until_idle)?;
    println!(
        "daemon: answered {} requests from {} clients",
        served.requests, served.clients_seen
    );
    Ok(())
}

//! A client of the request/reply service in `examples/daemon.rs`: sends
//! requests one at a time and checks every answer.
//!
//! ```sh
//! cargo run --example client                 # 1000 requests
//! cargo run --example client -- NAME 5000
//! ```

mod echo;

use std::time::Duration;

use memlink_shm::Client;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map_or(echo::DEFAULT_NAME, String::as_str);
    let n = args.get(1).map_or(Ok(1000), |s| s.parse())?;
    // Started before the daemon? Wait up to 10 s for it to come.
    let mut client = Client::builder(name).wait(Duration::from_secs(10)).connect()?;
    let asked = echo::ask(&mut client, n)?;
    println!("{}", echo::report(&client, &asked));
    Ok(())
}

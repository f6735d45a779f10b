//! The request/reply service of `examples/daemon.rs` with several client
//! processes, in one command: this program creates the daemon, starts
//! itself again once per client, serves them all, and exits when they are
//! done.
//!
//! ```sh
//! cargo run --example service                # 4 client processes, 1000 requests each
//! cargo run --example service -- 8 20000
//! ```

mod echo;

use std::process::{Command, Stdio};

use memlink_shm::{Client, Daemon};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--client") {
        let (name, n) = (&args[1], args[2].parse()?);
        let mut client = Client::connect(name)?;
        let asked = echo::ask(&mut client, n)?;
        println!("{}", echo::report(&client, &asked));
        return Ok(());
    }
    let clients: u32 = args.first().map_or(Ok(4), |s| s.parse())?;
    let requests: u64 = args.get(1).map_or(Ok(1000), |s| s.parse())?;
    let name = format!("{}-{}", echo::DEFAULT_NAME, std::process::id());
    let mut daemon = Daemon::builder(&name).max_clients(clients.max(1)).create()?;
    println!("daemon: serving {name}, starting {clients} client processes");
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for _ in 0..clients {
        let child = Command::new(&exe)
            .args(["--client", &name, &requests.to_string()])
            .stdin(Stdio::null())
            .spawn()?;
        children.push(child);
    }
    let served = echo::serve(&mut daemon, true)?;
    let mut failed = 0;
    for mut child in children {
        if !child.wait()?.success() {
            failed += 1;
        }
    }
    println!(
        "daemon: answered {} requests from {} client processes",
        served.requests, served.clients_seen
    );
    if failed > 0 {
        return Err(format!("{failed} client processes failed").into());
    }
    Ok(())
}

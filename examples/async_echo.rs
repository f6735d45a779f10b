//! The echo service on tokio: one daemon task answers several client
//! processes, each of which sends its requests from one task and reads the
//! answers from another (the two halves of a split client), pipelined.
//! This program creates the daemon, starts itself again once per client,
//! and exits when they are all done.
//!
//! ```sh
//! cargo run --release --example async_echo               # 4 client processes, 10000 requests each
//! cargo run --release --example async_echo -- 8 100000
//! ```

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use memlink_shm::{Client, Daemon, Error, Priority};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--client") {
        return client(&args[1], args[2].parse()?).await;
    }
    let clients: u32 = args.first().map_or(Ok(4), |s| s.parse())?;
    let requests: u64 = args.get(1).map_or(Ok(10_000), |s| s.parse())?;
    let name = format!("memlink-async-echo-{}", std::process::id());
    let daemon = Daemon::builder(&name).max_clients(clients.max(1)).create()?;
    println!("daemon: serving {name}, starting {clients} client processes");
    let server = tokio::spawn(serve(daemon));
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for _ in 0..clients {
        let child = tokio::process::Command::new(&exe)
            .args(["--client", &name, &requests.to_string()])
            .spawn()?;
        children.push(child);
    }
    let mut failed = 0;
    for mut child in children {
        if !child.wait().await?.success() {
            failed += 1;
        }
    }
    let (answered, seen) = server.await??;
    println!("daemon: answered {answered} requests from {seen} client processes");
    if failed > 0 {
        return Err(format!("{failed} client processes failed").into());
    }
    Ok(())
}

/// The daemon task: answers every request in upper case, on its own tier,
/// until the clients it has seen have all left.
async fn serve(mut daemon: Daemon) -> Result<(u64, usize), Error> {
    let (mut answered, mut seen) = (0, HashSet::new());
    loop {
        // A bounded wait, so that the task notices when everyone has left.
        match tokio::time::timeout(Duration::from_millis(100), daemon.recv_async()).await {
            Ok(request) => {
                let request = request?;
                seen.insert(request.client());
                let reply = request.payload().to_ascii_uppercase();
                match daemon.send_to_async(request.client(), request.priority(), &reply).await {
                    // A client that left before its answer is not an error of the service.
                    Ok(()) | Err(Error::UnknownClient(_)) => answered += 1,
                    Err(e) => return Err(e),
                }
            }
            Err(_) if !seen.is_empty() && daemon.control().client_count() == 0 => return Ok((answered, seen.len())),
            Err(_) => {}
        }
    }
}

/// A client process: one task sends `n` requests, this one reads the
/// answers as a stream and checks each.
async fn client(name: &str, n: u64) -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::connect(name)?;
    let id = client.control().id();
    let (mut tx, mut rx) = client.split();
    let start = Instant::now();
    let sender = tokio::spawn(async move {
        for i in 0..n {
            tx.send_async(Priority::High, format!("request {i} from {id}").as_bytes())
                .await?;
        }
        Ok::<_, Error>(tx)
    });
    let mut answers = rx.stream();
    for i in 0..n {
        let reply = answers.next().await.ok_or("the daemon went away")??;
        let expected = format!("REQUEST {i} FROM {}", id.to_string().to_ascii_uppercase());
        if reply.payload() != expected.as_bytes() {
            return Err(format!("answer {i}: {:?}", String::from_utf8_lossy(reply.payload())).into());
        }
    }
    let elapsed = start.elapsed();
    drop(sender.await??);
    println!(
        "client {id}: {n} requests answered in {elapsed:.1?}, {:.0} per second, pipelined",
        n as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

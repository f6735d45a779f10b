//! The request/reply service of the `daemon`, `client` and `service`
//! examples: a client sends text requests, the daemon answers each with the
//! text in upper case, on the request's own tier.
#![allow(dead_code)] // each example uses part of it

use std::time::{Duration, Instant};

use memlink_shm::{Client, Daemon, Error, Priority};

/// The segment name the examples use unless told otherwise.
pub const DEFAULT_NAME: &str = "memlink-echo";

/// What the daemon did.
#[derive(Debug, Default)]
pub struct Served {
    pub requests: u64,
    pub clients_seen: usize,
}

/// Answers requests until stopped: with `until_idle`, once it has served at
/// least one client and none is connected any more.
pub fn serve(daemon: &mut Daemon, until_idle: bool) -> Result<Served, Error> {
    let mut served = Served::default();
    let mut seen = std::collections::HashSet::new();
    loop {
        match daemon.recv_timeout(Duration::from_millis(100)) {
            Ok(request) => {
                if seen.insert(request.client()) {
                    served.clients_seen = seen.len();
                    println!("daemon: client {} connected", request.client());
                }
                let reply = request.payload().to_ascii_uppercase();
                // A client that left before its answer is not an error of the service.
                match daemon.send_to(request.client(), request.priority(), &reply) {
                    Ok(()) | Err(Error::UnknownClient(_)) => served.requests += 1,
                    Err(e) => return Err(e),
                }
            }
            Err(Error::Timeout) if until_idle && !seen.is_empty() && daemon.control().client_count() == 0 => {
                return Ok(served)
            }
            Err(Error::Timeout) => {}
            Err(e) => return Err(e),
        }
    }
}

/// What a client measured.
#[derive(Debug)]
pub struct Asked {
    pub requests: u64,
    pub elapsed: Duration,
    pub worst: Duration,
}

/// Sends `n` requests, one at a time, and checks every answer.
pub fn ask(client: &mut Client, n: u64) -> Result<Asked, Box<dyn std::error::Error>> {
    let start = Instant::now();
    let mut worst = Duration::ZERO;
    for i in 0..n {
        let request = format!("request {i} from {}", client.control().id());
        let priority = if i % 10 == 0 {
            Priority::Critical
        } else {
            Priority::High
        };
        let sent = Instant::now();
        client.send(priority, request.as_bytes())?;
        let reply = client.recv_timeout(Duration::from_secs(10))?;
        worst = worst.max(sent.elapsed());
        if reply.payload() != request.to_ascii_uppercase().as_bytes() || reply.priority() != priority {
            return Err(format!(
                "request {i}: wrong answer {:?}",
                String::from_utf8_lossy(reply.payload())
            )
            .into());
        }
    }
    Ok(Asked {
        requests: n,
        elapsed: start.elapsed(),
        worst,
    })
}

/// One line about a client's run.
pub fn report(client: &Client, asked: &Asked) -> String {
    let per = asked.elapsed / asked.requests.max(1) as u32;
    format!(
        "client {}: {} requests answered, {:.1?} per round trip on average, {:.1?} at worst",
        client.control().id(),
        asked.requests,
        per,
        asked.worst
    )
}

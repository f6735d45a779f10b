//! A serde value's round trip between two processes: memlink's typed
//! messages (postcard, encoded into the ring), Servo's ipc-channel (bincode
//! over a Unix socket pair), and tokio's `UnixStream` with the same
//! postcard encoding and a length prefix. The value: an id, a timestamp
//! and a 32-byte string, decoded and re-encoded by the echoing peer.

use std::time::Instant;

use hdrhistogram::Histogram;
use ipc_channel::ipc::{self, IpcOneShotServer, IpcReceiver, IpcSender};
use memlink_shm::typed::{Postcard, Typed};
use memlink_shm::{Client, Daemon, Priority};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{histogram, spawn_peer, STEP};

/// The value that goes back and forth.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Record {
    id: u64,
    timestamp: u64,
    name: String,
}

impl Typed for Record {
    const NAME: &'static str = "peers.Record";
    type Encoding = Postcard;
}

fn record(i: u64) -> Record {
    Record {
        id: i,
        timestamp: 1_700_000_000_000_000_000 + i,
        name: format!("{:032}", i), // 32 bytes
    }
}

/// Times `n` round trips of `once(i)` after a tenth as many to warm up.
fn time(n: u64, mut once: impl FnMut(u64)) -> Histogram<u64> {
    let mut h = histogram();
    let warm = n / 10;
    for i in 0..warm + n {
        let t0 = Instant::now();
        once(i);
        if i >= warm {
            h.saturating_record(t0.elapsed().as_nanos() as u64);
        }
    }
    h
}

/// memlink: the client sends a typed `Record`, the peer (daemon) decodes
/// it and sends it back typed.
pub fn memlink(tag: &str, n: u64) -> Result<Histogram<u64>, Box<dyn std::error::Error>> {
    let name = format!("{tag}-serde");
    let mut daemon = Daemon::builder(&name).max_clients(1).create()?;
    let mut child = spawn_peer(&["memlink-serde-echo", &name]);
    let client = daemon.recv_timeout(STEP)?.client();
    // Roles swap: this process is the client, the peer echoes as daemon; so
    // here the daemon side sends and receives.
    let h = time(n, |i| {
        let r = record(i);
        daemon.send_to(client, Priority::High, &r).expect("send");
        let back: Record = daemon.recv_timeout(STEP).expect("echo").decode().expect("a Record");
        assert_eq!(back.id, r.id);
    });
    daemon.send_to(client, Priority::Critical, b"quit")?;
    child.wait()?;
    Ok(h)
}

/// ipc-channel: a channel each way, set up through a one-shot server.
pub fn ipc_channel(n: u64) -> Result<Histogram<u64>, Box<dyn std::error::Error>> {
    let (server, server_name) = IpcOneShotServer::<(IpcSender<Option<Record>>, IpcReceiver<Record>)>::new()?;
    let mut child = spawn_peer(&["ipc-channel-echo", &server_name]);
    let (_, (to_peer, from_peer)) = server.accept()?;
    let h = time(n, |i| {
        let r = record(i);
        to_peer.send(Some(r.clone())).expect("send");
        let back = from_peer.recv().expect("echo");
        assert_eq!(back.id, r.id);
    });
    to_peer.send(None)?;
    child.wait()?;
    Ok(h)
}

/// tokio `UnixStream` (current-thread runtimes), postcard with a 4-byte
/// length prefix.
pub fn tokio_unix(tag: &str, n: u64) -> Result<Histogram<u64>, Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join(format!("{tag}-serde.sock"));
    let _ = std::fs::remove_file(&path);
    let rt = runtime();
    rt.block_on(async {
        let listener = tokio::net::UnixListener::bind(&path)?;
        let mut child = spawn_peer(&["tokio-serde-echo", path.to_str().unwrap()]);
        let (mut s, _) = listener.accept().await?;
        let _ = std::fs::remove_file(&path);
        let mut h = histogram();
        let (warm, mut buf) = (n / 10, Vec::new());
        for i in 0..warm + n {
            let t0 = Instant::now();
            let r = record(i);
            write_framed(&mut s, &r).await?;
            let back: Record = read_framed(&mut s, &mut buf).await?;
            assert_eq!(back.id, r.id);
            if i >= warm {
                h.saturating_record(t0.elapsed().as_nanos() as u64);
            }
        }
        drop(s);
        child.wait()?;
        Ok(h)
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn write_framed(s: &mut tokio::net::UnixStream, r: &Record) -> std::io::Result<()> {
    let body = postcard::to_stdvec(r).map_err(std::io::Error::other)?;
    let mut frame = (body.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&body);
    s.write_all(&frame).await
}

async fn read_framed(s: &mut tokio::net::UnixStream, buf: &mut Vec<u8>) -> std::io::Result<Record> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await?;
    buf.resize(u32::from_le_bytes(len) as usize, 0);
    s.read_exact(buf).await?;
    postcard::from_bytes(buf).map_err(std::io::Error::other)
}

/// The peer roles of these cases; `None` if `a` is none of them.
pub fn peer(a: &[&str]) -> Option<Result<(), Box<dyn std::error::Error>>> {
    Some(match a {
        ["memlink-serde-echo", name] => (|| {
            let mut c = Client::connect(name)?;
            c.send(Priority::High, b"hello")?;
            loop {
                let m = c.recv()?;
                if m.priority() == Priority::Critical {
                    return Ok(());
                }
                let r: Record = m.decode()?;
                c.send(Priority::High, &r)?;
            }
        })(),
        ["ipc-channel-echo", server] => (|| {
            let boot = IpcSender::connect(server.to_string())?;
            let (to_me, from_parent) = ipc::channel::<Option<Record>>()?;
            let (to_parent, from_me) = ipc::channel::<Record>()?;
            boot.send((to_me, from_me))?;
            while let Some(r) = from_parent.recv()? {
                to_parent.send(r)?;
            }
            Ok(())
        })(),
        ["tokio-serde-echo", path] => runtime().block_on(async {
            let mut s = tokio::net::UnixStream::connect(path).await?;
            let mut buf = Vec::new();
            while let Ok(r) = read_framed(&mut s, &mut buf).await {
                write_framed(&mut s, &r).await?;
            }
            Ok(())
        }),
        _ => return None,
    })
}

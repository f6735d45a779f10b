//! Every snippet of the memlink-shm 0.1.3 README that uses the modules of
//! this crate, compiled and run. Where a snippet was not valid Rust on its own
//! (undefined variables, `?` on an `Option` in a function returning `Result`),
//! the glue is the smallest that makes it so; segment paths get a unique
//! suffix so parallel runs do not collide.
// Exercises the 0.1.3 layer, including its deprecated 0.2 additions.
#![allow(deprecated)]

mod support;

use std::time::Duration;

use memlink_shm::buffer::RingBuffer;
use memlink_shm::pring::PriorityRingBuffer;
use memlink_shm::priority::Priority;
use memlink_shm::transport::{NrelayShmTransport, ShmError, ShmResult, ShmTransport};
use support::{unique_name, SegmentGuard};

fn tmp(tag: &str) -> (String, SegmentGuard) {
    let path = format!("/tmp/{}", unique_name(tag));
    (path.clone(), SegmentGuard(path))
}

#[test]
fn quick_start_basic_usage_single_process() {
    use memlink_shm::buffer::{Priority, RingBuffer};

    let rb = RingBuffer::new(256).unwrap();

    rb.write_slot(Priority::High, b"Hello, World!").unwrap();

    let mut received = None;
    if let Some((priority, data)) = rb.read_slot() {
        println!("Received: {:?}", String::from_utf8_lossy(&data));
        received = Some((priority, data));
    }
    assert_eq!(received, Some((Priority::High, b"Hello, World!".to_vec())));
}

#[test]
fn quick_start_daemon_client_communication() {
    let (path, _g) = tmp("my_shm");
    // Daemon (Server) - Create shared memory
    let daemon = NrelayShmTransport::create(&path, 65536, 1).unwrap();

    // Client - Connect to existing daemon
    let client = NrelayShmTransport::connect(&path, 1).unwrap();

    // Send message from client
    client.write(Priority::High, b"Request data").unwrap();
    client.signal();

    // Receive on daemon
    daemon.wait(None).ok();
    let (priority, data) = daemon.read().unwrap();
    assert_eq!((priority, &data[..]), (Priority::High, &b"Request data"[..]));
}

#[test]
fn api_reference_ring_buffer() {
    fn snippet(data: &[u8]) -> Option<Vec<u8>> {
        let rb = RingBuffer::new(256).ok()?; // Capacity must be power of 2 (any size works now)
        rb.write_slot(Priority::High, data).ok()?;
        let (_, data) = rb.read_slot()?;
        Some(data)
    }
    assert_eq!(snippet(b"payload").as_deref(), Some(&b"payload"[..]));
}

#[test]
fn api_reference_priority_ring_buffer() {
    fn snippet(critical_data: &[u8], high_data: &[u8], low_data: &[u8]) -> Option<(Priority, Vec<u8>)> {
        let prb = PriorityRingBuffer::new(256).ok()?;
        prb.write(Priority::Critical, critical_data).ok()?;
        prb.write(Priority::High, high_data).ok()?;
        prb.write(Priority::Low, low_data).ok()?;

        // Reads return in priority order
        let (priority, data) = prb.read()?;
        Some((priority, data))
    }
    assert_eq!(snippet(b"c", b"h", b"l"), Some((Priority::Critical, b"c".to_vec())));
}

#[test]
fn api_reference_transport() -> ShmResult<()> {
    let (path, _g) = tmp("shm");
    // Daemon
    let daemon = NrelayShmTransport::create(&path, 65536, 1)?;

    // Client
    let client = NrelayShmTransport::connect(&path, 1)?;
    assert_eq!(daemon.client_count(), 1);
    assert!(client.is_connected());
    Ok(())
}

#[test]
fn use_case_high_frequency_trading() -> ShmResult<()> {
    let (path, _g) = tmp("market_data");
    let price_update = b"EURUSD 1.0842";
    let daemon = NrelayShmTransport::create(&path, 1048576, 1)?;
    let subscriber = NrelayShmTransport::connect(&path, 1)?;

    // Critical price updates
    daemon.write(Priority::Critical, price_update)?;

    daemon.signal();
    assert_eq!(
        subscriber.recv(Some(Duration::from_secs(5)))?,
        (Priority::Critical, price_update.to_vec())
    );
    Ok(())
}

#[test]
fn use_case_game_engine_subsystems() -> ShmResult<()> {
    let (path, _g) = tmp("physics_render");
    let physics_state = [0u8; 1024];
    // Physics engine sending state to renderer
    let transport = NrelayShmTransport::create(&path, 262144, 1)?;
    transport.write(Priority::High, &physics_state)?; // no renderer yet: delivered to nobody
    let renderer = NrelayShmTransport::connect(&path, 1)?;
    transport.write(Priority::High, &physics_state)?;
    assert_eq!(renderer.read()?.1.len(), 1024);
    Ok(())
}

#[test]
fn use_case_microservices_communication() -> ShmResult<()> {
    let (path, _g) = tmp("service_bus");
    let bus = NrelayShmTransport::create(&path, 65536, 1)?;
    let request = b"GET /users/42";

    // Same-machine microservices avoiding network overhead
    let client = NrelayShmTransport::connect(&path, 1)?;
    client.write(Priority::High, request)?;

    assert_eq!(bus.read()?.1, request);
    Ok(())
}

#[test]
fn use_case_plugin_architectures() -> ShmResult<()> {
    let (path, _g) = tmp("host_plugin");
    // Host application communicating with plugins
    let host = NrelayShmTransport::create(&path, 131072, 1)?;
    assert!(host.is_daemon());
    Ok(())
}

#[test]
fn use_case_real_time_data_pipelines() -> ShmResult<()> {
    let (alarm_data, telemetry_data) = (b"overheat", b"21.5C");
    // Sensor data ingestion with priority handling
    let buffer = PriorityRingBuffer::new(512)?;
    buffer.write(Priority::Critical, alarm_data)?;
    buffer.write(Priority::Low, telemetry_data)?;
    assert_eq!(buffer.read(), Some((Priority::Critical, alarm_data.to_vec())));
    Ok(())
}

#[test]
fn advanced_backpressure_control() -> ShmResult<()> {
    let (path, _g) = tmp("bp");
    let daemon = NrelayShmTransport::create(&path, 65536, 1)?;
    let transport = NrelayShmTransport::connect(&path, 1)?;

    let level = transport.backpressure(); // 0.0 to 1.0
    assert_eq!(level, 0.0);
    // Real occupancy: fill the client's High ring.
    while transport.write(Priority::High, &[0; 1000]).is_ok() {}
    let level = transport.backpressure();
    let mut slowed = false;
    if level > 0.8 {
        // Slow down producers
        slowed = true;
    }
    assert!(slowed, "a full ring reads as {level}");
    // A hint published by the consumer reaches the producer.
    while daemon.read().is_ok() {}
    assert!(transport.backpressure() < 0.1);
    daemon.set_backpressure(0.5);
    assert_eq!(transport.backpressure(), 0.5);
    transport.set_backpressure(0.7);
    assert_eq!(daemon.backpressure(), 0.7);
    Ok(())
}

#[test]
fn error_handling() {
    let (path, _g) = tmp("errors");
    let daemon = NrelayShmTransport::create(&path, 65536, 1).unwrap();
    let transport = NrelayShmTransport::connect(&path, 1).unwrap();

    let mut seen = Vec::new();
    for data in [&[1u8; 100][..], &[0u8; 5000][..]]
        .into_iter()
        .chain(std::iter::repeat(&[2u8; 1000][..]).take(100))
    {
        let outcome = match transport.write(Priority::High, data) {
            Ok(_) => "Sent!",
            Err(ShmError::BufferFull) => "Buffer full, retry later",
            Err(ShmError::Disconnected) => "Daemon disconnected",
            Err(ShmError::Timeout) => "Operation timed out",
            Err(ShmError::MessageTooLarge) => "Message exceeds 4KB limit",
            Err(e) => {
                println!("Error: {}", e);
                "other"
            }
        };
        seen.push(outcome);
    }
    assert_eq!(&seen[..2], ["Sent!", "Message exceeds 4KB limit"]);
    assert!(seen.contains(&"Buffer full, retry later"));
    daemon.shutdown();
    assert!(matches!(
        transport.write(Priority::High, b"x"),
        Err(ShmError::Disconnected)
    ));
}

#[test]
fn best_practice_clean_shutdown_notifies_clients() {
    let (path, _g) = tmp("clean");
    let daemon = NrelayShmTransport::create(&path, 65536, 1).unwrap();
    let client = NrelayShmTransport::connect(&path, 1).unwrap();
    // Handle disconnections: always check is_connected() before operations.
    assert!(client.is_connected());
    daemon.shutdown();
    assert!(!client.is_connected());
    assert!(matches!(
        client.wait(Some(Duration::from_secs(5))),
        Err(ShmError::Disconnected)
    ));
}

#[test]
fn advanced_crash_recovery() -> ShmResult<()> {
    use memlink_shm::recovery::RecoveryManager;
    let (path, _g) = tmp("my_shm");

    let recovery = RecoveryManager::new(&path);
    recovery.register_daemon()?;

    // Automatic PID file management
    let pid_file = std::fs::read_to_string(format!("{path}.pid")).unwrap();
    assert!(pid_file.starts_with(&format!("{} ", std::process::id())));
    // Detects crashed daemons (here: a live one, this process)
    assert!(RecoveryManager::new(&path).is_already_running());
    // Cleans up orphaned resources: a segment left by a daemon that is gone
    let daemon = NrelayShmTransport::create(&path, 65536, 1)?;
    assert!(!recovery.cleanup_orphaned_shm(&path)?, "a live daemon's segment stays");
    std::mem::forget(daemon); // "crash": no shutdown, but this process lives on, so
    assert!(!recovery.cleanup_orphaned_shm(&path)?); // its lock still holds the segment
    Ok(())
}

#[test]
fn advanced_heartbeat_monitoring() {
    use memlink_shm::recovery::Heartbeat;
    use std::sync::Arc;

    let heartbeat = Arc::new(Heartbeat::new(1)); // 1 second interval
    heartbeat.beat();

    let mut recovered = false;
    if !heartbeat.is_alive(5) {
        // Daemon is dead, trigger recovery
        recovered = true;
    }
    assert!(!recovered);
}

#[test]
fn advanced_bounds_checking() -> ShmResult<()> {
    use memlink_shm::safety::{BoundsChecker, SafeShmAccess};
    let mut region = vec![0u8; 4096];
    let (base_ptr, size, offset, len) = (region.as_mut_ptr(), region.len(), 100, 200);

    let access = SafeShmAccess::new(base_ptr, size);
    access.with_safe_access(offset, len, || {
        // Safe operation with bounds checking
    })?;
    assert!(access.with_safe_access(offset, size, || ()).is_err());
    assert!(BoundsChecker::new(size).check(offset, len).is_ok());
    Ok(())
}

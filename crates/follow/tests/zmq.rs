//! ZMQ notifications: a real `zeromq::PubSocket` on 127.0.0.1 publishes Core-shaped
//! messages (the regtest bitcoind built here has no ZMQ support) to the follower's listener.

use bitcoin::hashes::Hash;
use cointrail_follow::zmq::{parse_message, spawn_listener, SeqTracker, ZmqEvent};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zeromq::{Socket, SocketSend, ZmqMessage};

fn msg(topic: &str, body: &[u8], seq: u32) -> ZmqMessage {
    ZmqMessage::try_from(vec![
        bytes_of(topic.as_bytes()),
        bytes_of(body),
        bytes_of(&seq.to_le_bytes()),
    ])
    .unwrap()
}

fn bytes_of(b: &[u8]) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(b)
}

#[test]
fn parses_core_frames_and_refuses_malformed_ones() {
    let g = bitcoin::constants::genesis_block(bitcoin::Network::Regtest);
    let mut display = g.block_hash().to_byte_array();
    display.reverse();
    let ev = parse_message(&[b"hashblock", &display, &7u32.to_le_bytes()]).unwrap();
    assert_eq!(
        ev,
        ZmqEvent::HashBlock {
            hash: g.block_hash(),
            seq: 7
        }
    );
    let raw = bitcoin::consensus::serialize(&g);
    let ev = parse_message(&[b"rawblock", &raw, &[1, 0, 0, 1]]).unwrap();
    assert_eq!(
        ev,
        ZmqEvent::RawBlock {
            bytes: raw.clone(),
            seq: 0x0100_0001
        }
    );
    assert!(parse_message(&[b"hashblock", &display])
        .unwrap_err()
        .contains("2 frames"));
    assert!(parse_message(&[b"hashblock", &display[..31], &[0; 4]])
        .unwrap_err()
        .contains("31 bytes"));
    assert!(parse_message(&[b"hashblock", &display, &[0; 3]])
        .unwrap_err()
        .contains("3 bytes"));
    assert!(parse_message(&[b"rawtx", &raw, &[0; 4]])
        .unwrap_err()
        .contains("rawtx"));
    let mut s = SeqTracker::default();
    assert!(!s.gap("rawblock", 5));
    assert!(!s.gap("rawblock", 6));
    assert!(!s.gap("hashblock", 0));
    assert!(s.gap("rawblock", 8));
    assert!(!s.gap("rawblock", 9));
    assert!(!s.gap("rawblock", 10) && !s.gap("rawblock", 11));
    let mut w = SeqTracker::default();
    assert!(
        !w.gap("hashblock", u32::MAX) && !w.gap("hashblock", 0),
        "sequence wraps"
    );
}

#[test]
fn listener_hears_a_real_pub_socket() {
    // Multi-threaded: the PUB side must keep accepting and writing while the test blocks.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _in_rt = rt.enter();
    let mut publ = zeromq::PubSocket::new();
    let ep = rt.block_on(publ.bind("tcp://127.0.0.1:0")).unwrap();
    let ep = ep.to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let h = spawn_listener(ep.clone(), tx, stop.clone());
    // The listener says when it subscribed; PUB drops messages sent before the subscription
    // reaches it, so keep publishing the first message until it arrives.
    assert!(matches!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        ZmqEvent::Resync(_)
    ));
    let g = bitcoin::constants::genesis_block(bitcoin::Network::Regtest);
    let mut display = g.block_hash().to_byte_array();
    display.reverse();
    let t0 = Instant::now();
    let first = loop {
        rt.block_on(publ.send(msg("hashblock", &display, 0)))
            .unwrap();
        if let Ok(ev) = rx.recv_timeout(Duration::from_millis(100)) {
            break ev;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no message through the subscription"
        );
    };
    assert_eq!(
        first,
        ZmqEvent::HashBlock {
            hash: g.block_hash(),
            seq: 0
        }
    );
    // Drain duplicates of the first message.
    std::thread::sleep(Duration::from_millis(200));
    while rx.try_recv().is_ok() {}
    let raw = bitcoin::consensus::serialize(&g);
    rt.block_on(publ.send(msg("rawblock", &raw, 0))).unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        ZmqEvent::RawBlock {
            bytes: raw.clone(),
            seq: 0
        }
    );
    // A dropped message (sequence 1 never sent) makes the listener ask for a resync first.
    rt.block_on(publ.send(msg("rawblock", &raw, 2))).unwrap();
    assert!(
        matches!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), ZmqEvent::Resync(m) if m.contains("gap"))
    );
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        ZmqEvent::RawBlock { bytes: raw, seq: 2 }
    );
    // Malformed messages are skipped, not fatal.
    rt.block_on(publ.send(msg("hashblock", b"short", 1)))
        .unwrap();
    rt.block_on(publ.send(msg("hashblock", &display, 2)))
        .unwrap();
    let ev = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let ev = if matches!(ev, ZmqEvent::Resync(_)) {
        rx.recv_timeout(Duration::from_secs(5)).unwrap()
    } else {
        ev
    };
    assert_eq!(
        ev,
        ZmqEvent::HashBlock {
            hash: g.block_hash(),
            seq: 2
        }
    );
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}

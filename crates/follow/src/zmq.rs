//! Bitcoin Core ZMQ notifications (`hashblock`, `rawblock`) over the pure-Rust `zeromq`
//! crate. Core publishes three frames: topic, body, and a little-endian u32 sequence number
//! per topic; a gap in the sequence means messages were dropped (PUB drops for slow
//! subscribers), which the follower answers with a full RPC sync.

use bitcoin::hashes::Hash;
use bitcoin::BlockHash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;
use zeromq::{Socket, SocketRecv};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZmqEvent {
    HashBlock {
        hash: BlockHash,
        seq: u32,
    },
    RawBlock {
        bytes: Vec<u8>,
        seq: u32,
    },
    /// The subscription (re)connected or dropped messages: resynchronise over RPC.
    Resync(String),
}

/// Parse one multipart message.
pub fn parse_message(frames: &[&[u8]]) -> Result<ZmqEvent, String> {
    if frames.len() != 3 {
        return Err(format!(
            "ZMQ message has {} frames; Core sends 3 (topic, body, sequence)",
            frames.len()
        ));
    }
    let seq: [u8; 4] = frames[2]
        .try_into()
        .map_err(|_| format!("ZMQ sequence frame is {} bytes, not 4", frames[2].len()))?;
    let seq = u32::from_le_bytes(seq);
    match frames[0] {
        b"hashblock" => {
            let mut h: [u8; 32] = frames[1]
                .try_into()
                .map_err(|_| format!("hashblock body is {} bytes, not 32", frames[1].len()))?;
            // Core sends the hash in display (reversed) byte order.
            h.reverse();
            Ok(ZmqEvent::HashBlock {
                hash: BlockHash::from_byte_array(h),
                seq,
            })
        }
        b"rawblock" => {
            if frames[1].len() < 81 {
                return Err(format!("rawblock body is only {} bytes", frames[1].len()));
            }
            Ok(ZmqEvent::RawBlock {
                bytes: frames[1].to_vec(),
                seq,
            })
        }
        t => Err(format!(
            "unexpected ZMQ topic {:?}",
            String::from_utf8_lossy(t)
        )),
    }
}

/// Tracks per-topic sequence numbers and says when some were missed.
#[derive(Default)]
pub struct SeqTracker {
    last: std::collections::HashMap<&'static str, u32>,
}

impl SeqTracker {
    /// `true` when `seq` is not the successor of the last one seen on `topic`.
    pub fn gap(&mut self, topic: &'static str, seq: u32) -> bool {
        let g = self
            .last
            .get(topic)
            .is_some_and(|&l| l.wrapping_add(1) != seq);
        self.last.insert(topic, seq);
        g
    }
}

/// Subscribe to `endpoint` on a thread of its own (a small tokio runtime), forwarding
/// events to `tx` until `stop` or the receiver goes away. Reconnects with backoff.
pub fn spawn_listener(
    endpoint: String,
    tx: Sender<ZmqEvent>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!("ZMQ listener: cannot start a runtime: {e}; polling only");
                return;
            }
        };
        rt.block_on(listen(endpoint, tx, stop));
    })
}

async fn listen(endpoint: String, tx: Sender<ZmqEvent>, stop: Arc<AtomicBool>) {
    let mut backoff = Duration::from_millis(500);
    while !stop.load(Ordering::Relaxed) {
        let mut sock = zeromq::SubSocket::new();
        let connected = async {
            sock.connect(&endpoint).await?;
            sock.subscribe("hashblock").await?;
            sock.subscribe("rawblock").await?;
            Ok::<_, zeromq::ZmqError>(())
        }
        .await;
        if let Err(e) = connected {
            tracing::warn!("ZMQ {endpoint}: {e}; retrying in {backoff:?} (polling meanwhile)");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
            continue;
        }
        backoff = Duration::from_millis(500);
        if tx
            .send(ZmqEvent::Resync(format!("subscribed to {endpoint}")))
            .is_err()
        {
            return;
        }
        let mut seqs = SeqTracker::default();
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let msg = match tokio::time::timeout(Duration::from_millis(250), sock.recv()).await {
                Err(_) => continue,
                Ok(Err(e)) => {
                    tracing::warn!("ZMQ {endpoint}: {e}; reconnecting");
                    break;
                }
                Ok(Ok(m)) => m,
            };
            let frames: Vec<&[u8]> = msg.iter().map(|b| b.as_ref()).collect();
            let ev = match parse_message(&frames) {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::warn!("ZMQ {endpoint}: {e}");
                    continue;
                }
            };
            let (topic, seq) = match &ev {
                ZmqEvent::HashBlock { seq, .. } => ("hashblock", *seq),
                ZmqEvent::RawBlock { seq, .. } => ("rawblock", *seq),
                ZmqEvent::Resync(_) => ("", 0),
            };
            if seqs.gap(topic, seq)
                && tx
                    .send(ZmqEvent::Resync(format!(
                        "{topic} sequence gap before {seq}"
                    )))
                    .is_err()
            {
                return;
            }
            if tx.send(ev).is_err() {
                return;
            }
        }
    }
}

//! What following any chain's node shares, whatever the chain: finding the last block the
//! index and the node's chain have in common, and waiting with exponential backoff while the
//! node is away. The Bitcoin follower (`follower.rs`) and the EVM one
//! (`cointrail_evmrpc::follower`) keep only their chain's own steps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Why no shared block was found.
#[derive(Debug, PartialEq, Eq)]
pub enum ForkError<E> {
    /// Asking the node failed.
    Node(E),
    /// The node's head is below the index's first block (it is still syncing).
    HeadBelowFirst { head: u64, first: u64 },
    /// Not even the index's first block is on the node's chain.
    Disjoint { first: u64 },
}

impl<E> From<E> for ForkError<E> {
    fn from(e: E) -> Self {
        ForkError::Node(e)
    }
}

/// The number of the last block both hold, walking down from min(index tip, node head);
/// `None` when nothing is indexed. `indexed` is (first, tip) of the index.
pub fn find_fork<H: PartialEq, E>(
    indexed: Option<(u64, u64)>,
    head: u64,
    mut node_hash: impl FnMut(u64) -> Result<Option<H>, E>,
    index_hash: impl Fn(u64) -> Option<H>,
) -> Result<Option<u64>, ForkError<E>> {
    let Some((first, tip)) = indexed else {
        return Ok(None);
    };
    if head < first {
        return Err(ForkError::HeadBelowFirst { head, first });
    }
    let mut n = tip.min(head);
    loop {
        if node_hash(n)? == index_hash(n) {
            return Ok(Some(n));
        }
        if n == first {
            return Err(ForkError::Disjoint { first });
        }
        n -= 1;
    }
}

/// Exponential backoff while a node is unreachable: 0.5 s, doubling up to `max`.
pub struct Backoff {
    first: Duration,
    next: Duration,
    max: Duration,
    down_since: Option<Instant>,
}

impl Backoff {
    pub fn new(max: Duration) -> Backoff {
        let first = Duration::from_millis(500).min(max);
        Backoff {
            first,
            next: first,
            max,
            down_since: None,
        }
    }

    /// The node failed again: how long to wait before the next try.
    pub fn failed(&mut self) -> Duration {
        self.down_since.get_or_insert_with(Instant::now);
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// The node answered: start over, and say how long it was away (if it was).
    pub fn recovered(&mut self) -> Option<Duration> {
        self.next = self.first;
        self.down_since.take().map(|t| t.elapsed())
    }
}

/// Sleep `d`, waking early once `stop` is set.
pub fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fork_is_the_last_shared_block() {
        let index = |n: u64| Some(n * 10);
        // The node agrees up to block 5, then has other blocks.
        let node = |n: u64| Ok::<_, ()>(Some(if n <= 5 { n * 10 } else { n * 10 + 1 }));
        assert_eq!(find_fork(Some((2, 9)), 12, node, index), Ok(Some(5)));
        assert_eq!(find_fork(Some((2, 9)), 7, node, index), Ok(Some(5)));
        assert_eq!(find_fork(None, 7, node, index), Ok(None));
        assert_eq!(
            find_fork(Some((2, 9)), 1, node, index),
            Err(ForkError::HeadBelowFirst { head: 1, first: 2 })
        );
        let other = |_| Ok::<_, ()>(Some(1));
        assert_eq!(
            find_fork(Some((2, 9)), 9, other, index),
            Err(ForkError::Disjoint { first: 2 })
        );
        let down = |_| Err::<Option<u64>, _>("down");
        assert_eq!(
            find_fork(Some((2, 9)), 9, down, index),
            Err(ForkError::Node("down"))
        );
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_starts_over() {
        let mut b = Backoff::new(Duration::from_secs(3));
        let waits: Vec<_> = (0..5).map(|_| b.failed().as_millis()).collect();
        assert_eq!(waits, vec![500, 1000, 2000, 3000, 3000]);
        assert!(b.recovered().is_some());
        assert_eq!(b.failed().as_millis(), 500);
        b.recovered();
        assert!(b.recovered().is_none());
    }
}

//! The bounded intake queue between sources (stdin, followed file, HTTP) and
//! the single decision loop.
//!
//! The gate's per-process state must see events in one order, so one consumer
//! decides; sources only parse nothing and wait. Stream sources block when the
//! queue is full (backpressure reaches Falco's own output queue). HTTP requests
//! wait a bounded time and are then refused with 503; those events are counted
//! as dropped by the caller (see the README's queue-full policy).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Where an event came from (for metrics and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File,
    Follow,
    Http,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Stdin => "stdin",
            Source::File => "file",
            Source::Follow => "follow",
            Source::Http => "http",
        }
    }
}

/// One raw input line.
#[derive(Debug)]
pub struct Item {
    /// The line without its newline; at most `LINE_BYTES_MAX + 1` bytes are kept.
    pub line: Vec<u8>,
    /// The line's full length, so an over-long line is reported with its size.
    pub full_len: usize,
    pub received: Instant,
    pub source: Source,
}

impl Item {
    pub fn new(line: Vec<u8>, source: Source) -> Item {
        Item {
            full_len: line.len(),
            line,
            received: Instant::now(),
            source,
        }
    }
}

/// What [`Queue::pop_timeout`] found.
#[derive(Debug)]
pub enum Pop {
    Item(Item),
    /// Nothing arrived in time (or the consumer was woken to look at signals).
    Idle,
    /// Closed or without producers, and empty: nothing will ever arrive.
    Finished,
}

/// Why a push failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// Still full after the wait; nothing was queued.
    Full,
    /// The agent is shutting down; nothing was queued.
    Closed,
    /// More events than the queue can ever hold at once.
    TooMany,
}

#[derive(Debug)]
struct State {
    items: VecDeque<Item>,
    producers: usize,
    closed: bool,
    woken: bool,
    high_water: usize,
}

/// A bounded multi-producer, single-consumer FIFO.
#[derive(Debug)]
pub struct Queue {
    state: Mutex<State>,
    not_empty: Condvar,
    not_full: Condvar,
    capacity: usize,
}

impl Queue {
    pub fn new(capacity: usize) -> Arc<Queue> {
        assert!(capacity > 0, "queue capacity must be positive");
        Arc::new(Queue {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(capacity.min(4096)),
                producers: 0,
                closed: false,
                woken: false,
                high_water: 0,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            capacity,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking producer cannot leave the deque half-updated; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Register a source. The queue reports [`Pop::Finished`] once every
    /// producer is gone and the queue is empty.
    pub fn producer(self: &Arc<Queue>) -> Producer {
        self.lock().producers += 1;
        Producer {
            queue: Arc::clone(self),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn depth(&self) -> usize {
        self.lock().items.len()
    }

    pub fn high_water(&self) -> usize {
        self.lock().high_water
    }

    /// Refuse new events from now on (shutdown); queued ones can still be popped.
    pub fn close(&self) {
        self.lock().closed = true;
        self.not_full.notify_all();
        self.not_empty.notify_all();
    }

    /// Make a waiting [`Queue::pop_timeout`] return [`Pop::Idle`] now (a signal arrived).
    pub fn wake(&self) {
        self.lock().woken = true;
        self.not_empty.notify_all();
    }

    /// Wait up to `timeout` for an item.
    pub fn pop_timeout(&self, timeout: Duration) -> Pop {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if let Some(item) = state.items.pop_front() {
                drop(state);
                self.not_full.notify_all();
                return Pop::Item(item);
            }
            if state.closed || state.producers == 0 {
                return Pop::Finished;
            }
            if std::mem::take(&mut state.woken) {
                return Pop::Idle;
            }
            let now = Instant::now();
            if now >= deadline {
                return Pop::Idle;
            }
            state = self
                .not_empty
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Take an item if one is queued (for draining at shutdown).
    pub fn try_pop(&self) -> Option<Item> {
        let item = self.lock().items.pop_front();
        if item.is_some() {
            self.not_full.notify_all();
        }
        item
    }

    /// Queue all of `items` or none, waiting up to `wait` for room (`None`:
    /// wait as long as it takes).
    fn push_all(&self, items: Vec<Item>, wait: Option<Duration>) -> Result<(), PushError> {
        let n = items.len();
        if n > self.capacity {
            return Err(PushError::TooMany);
        }
        let deadline = wait.map(|w| Instant::now() + w);
        let mut state = self.lock();
        loop {
            if state.closed {
                return Err(PushError::Closed);
            }
            if state.items.len() + n <= self.capacity {
                state.items.extend(items);
                state.high_water = state.high_water.max(state.items.len());
                drop(state);
                self.not_empty.notify_one();
                return Ok(());
            }
            state = match deadline {
                None => self.not_full.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(PushError::Full);
                    }
                    self.not_full
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

/// A registered source's handle; dropping it tells the consumer one source
/// has finished.
#[derive(Debug)]
pub struct Producer {
    queue: Arc<Queue>,
}

impl Producer {
    /// Wait as long as needed for room (stream sources: backpressure).
    pub fn push_blocking(&self, item: Item) -> Result<(), PushError> {
        self.queue.push_all(vec![item], None)
    }

    /// Queue a whole batch or nothing, waiting at most `wait` (HTTP).
    pub fn push_batch(&self, items: Vec<Item>, wait: Duration) -> Result<(), PushError> {
        self.queue.push_all(items, Some(wait))
    }

    pub fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.queue.lock().producers -= 1;
        self.queue.not_empty.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(text: &str) -> Item {
        Item::new(text.as_bytes().to_vec(), Source::Http)
    }

    #[test]
    fn batches_are_all_or_nothing_and_ordered() {
        let queue = Queue::new(3);
        let producer = queue.producer();
        producer
            .push_batch(vec![item("a"), item("b")], Duration::ZERO)
            .unwrap();
        let err = producer
            .push_batch(vec![item("c"), item("d")], Duration::from_millis(1))
            .unwrap_err();
        assert_eq!(err, PushError::Full);
        assert_eq!(queue.depth(), 2);
        assert_eq!(
            producer.push_batch((0..4).map(|_| item("y")).collect(), Duration::ZERO),
            Err(PushError::TooMany)
        );
        let Pop::Item(first) = queue.pop_timeout(Duration::ZERO) else {
            panic!("expected an item")
        };
        assert_eq!(first.line, b"a");
        assert_eq!(queue.high_water(), 2);
    }

    #[test]
    fn finishes_when_producers_are_gone_and_empty() {
        let queue = Queue::new(2);
        let producer = queue.producer();
        producer.push_blocking(item("a")).unwrap();
        drop(producer);
        assert!(matches!(queue.pop_timeout(Duration::ZERO), Pop::Item(_)));
        assert!(matches!(queue.pop_timeout(Duration::ZERO), Pop::Finished));
    }

    #[test]
    fn closed_queue_refuses_but_drains() {
        let queue = Queue::new(2);
        let producer = queue.producer();
        producer.push_blocking(item("a")).unwrap();
        queue.close();
        assert_eq!(producer.push_blocking(item("b")), Err(PushError::Closed));
        assert!(queue.try_pop().is_some());
        assert!(matches!(queue.pop_timeout(Duration::ZERO), Pop::Finished));
    }

    #[test]
    fn a_blocked_producer_resumes_when_the_consumer_pops() {
        let queue = Queue::new(1);
        let producer = queue.producer();
        producer.push_blocking(item("a")).unwrap();
        let handle = std::thread::spawn(move || producer.push_blocking(item("b")));
        // The consumer frees a slot; the producer's wait ends.
        assert!(matches!(
            queue.pop_timeout(Duration::from_secs(5)),
            Pop::Item(_)
        ));
        handle.join().unwrap().unwrap();
        let Pop::Item(second) = queue.pop_timeout(Duration::from_secs(5)) else {
            panic!("expected the blocked item")
        };
        assert_eq!(second.line, b"b");
    }
}

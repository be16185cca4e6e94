//! Sources: where Falco events come from. Each source only splits input into
//! lines and queues them; the decision loop does everything else.

pub mod follow;
pub mod http;
pub mod lines;
pub mod stream;

use crate::queue::{Item, Producer, Source};

/// Queue one line, waiting for room; `false` once the queue is closed.
pub(crate) fn push(producer: &Producer, line: Vec<u8>, full_len: usize, source: Source) -> bool {
    let mut item = Item::new(line, source);
    item.full_len = full_len;
    producer.push_blocking(item).is_ok()
}

//! Replay's record output: written in order and optionally hashed, either on
//! the replaying thread or, when the run has cores to spare, on a writer
//! thread, so that the `write` system calls (tens of megabytes for a large
//! corpus) overlap the decisions instead of stalling them.

use std::io::{self, Write};
use std::sync::mpsc;
use std::thread::{Scope, ScopedJoinHandle};

use sha2::{Digest, Sha256};

/// Rendered batches queued for the writer thread; a small bound keeps
/// memory fixed when the output is slower than the decisions.
const QUEUED_MAX: usize = 4;

enum Message {
    Text(String),
    /// End of a batch on a live stream: flush, so decisions are not held back.
    Flush,
}

/// Where records go, in the order they are handed over.
pub struct RecordSink<'scope, 'w> {
    mode: Mode<'scope, 'w>,
}

enum Mode<'scope, 'w> {
    Inline {
        out: &'w mut (dyn Write + Send),
        hasher: Option<Sha256>,
    },
    Thread {
        queue: mpsc::SyncSender<Message>,
        writer: ScopedJoinHandle<'scope, io::Result<Option<String>>>,
    },
}

impl std::fmt::Debug for RecordSink<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.mode {
            Mode::Inline { .. } => "inline",
            Mode::Thread { .. } => "writer thread",
        };
        f.debug_struct("RecordSink").field("mode", &mode).finish()
    }
}

impl<'scope, 'w: 'scope> RecordSink<'scope, 'w> {
    /// Write on the calling thread.
    pub fn inline(out: &'w mut (dyn Write + Send), digest: bool) -> RecordSink<'scope, 'w> {
        RecordSink {
            mode: Mode::Inline {
                out,
                hasher: digest.then(Sha256::new),
            },
        }
    }

    /// Write on a thread of `scope`.
    pub fn spawn(
        scope: &'scope Scope<'scope, '_>,
        out: &'w mut (dyn Write + Send),
        digest: bool,
    ) -> io::Result<RecordSink<'scope, 'w>> {
        let (queue, received) = mpsc::sync_channel::<Message>(QUEUED_MAX);
        let writer = std::thread::Builder::new()
            .name("scbe-writer".to_owned())
            .spawn_scoped(scope, move || {
                let mut hasher = digest.then(Sha256::new);
                for message in received {
                    match message {
                        Message::Text(text) => {
                            if let Some(h) = hasher.as_mut() {
                                h.update(text.as_bytes());
                            }
                            out.write_all(text.as_bytes())?;
                        }
                        Message::Flush => out.flush()?,
                    }
                }
                out.flush()?;
                Ok(hasher.map(|h| crate::replay::hex(&h.finalize())))
            })?;
        Ok(RecordSink {
            mode: Mode::Thread { queue, writer },
        })
    }

    /// Append rendered records.
    pub fn write(&mut self, text: String) -> io::Result<()> {
        match &mut self.mode {
            Mode::Inline { out, hasher } => {
                if let Some(h) = hasher.as_mut() {
                    h.update(text.as_bytes());
                }
                out.write_all(text.as_bytes())
            }
            Mode::Thread { queue, .. } => {
                queue.send(Message::Text(text)).map_err(|_| writer_gone())
            }
        }
    }

    /// Push what was written so far to the output (live streams).
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.mode {
            Mode::Inline { out, .. } => out.flush(),
            Mode::Thread { queue, .. } => queue.send(Message::Flush).map_err(|_| writer_gone()),
        }
    }

    /// Flush everything; the output's SHA-256 when a digest was asked for.
    /// After a failed [`Self::write`], this returns the writer's own error.
    pub fn finish(self) -> io::Result<Option<String>> {
        match self.mode {
            Mode::Inline { out, hasher } => {
                out.flush()?;
                Ok(hasher.map(|h| crate::replay::hex(&h.finalize())))
            }
            Mode::Thread { queue, writer } => {
                drop(queue);
                writer
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("the output writer thread panicked")))
            }
        }
    }
}

/// A send failed: the writer stopped on an error, which `finish` reports.
fn writer_gone() -> io::Error {
    io::Error::other("the output writer stopped")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts `room` bytes, then fails like a full disk.
    struct Full {
        room: usize,
        kept: Vec<u8>,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.kept.len() + buf.len() > self.room {
                return Err(io::Error::from_raw_os_error(28));
            }
            self.kept.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn run(threaded: bool, out: &mut (dyn Write + Send)) -> io::Result<Option<String>> {
        std::thread::scope(|scope| {
            let mut sink = if threaded {
                RecordSink::spawn(scope, out, true)?
            } else {
                RecordSink::inline(out, true)
            };
            for i in 0..1000 {
                if let Err(e) = sink.write(format!("record {i}\n")) {
                    // As replay does: the writer's own error wins.
                    return Err(sink.finish().err().unwrap_or(e));
                }
            }
            sink.flush()?;
            sink.finish()
        })
    }

    #[test]
    fn thread_and_inline_write_the_same_bytes_and_digest() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let digest_a = run(false, &mut a).unwrap();
        let digest_b = run(true, &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(digest_a, digest_b);
        assert_eq!(digest_a.map(|d| d.len()), Some(64));
    }

    #[test]
    fn a_failing_output_reports_its_own_error() {
        for threaded in [false, true] {
            let mut full = Full {
                room: 100,
                kept: Vec::new(),
            };
            let error = run(threaded, &mut full).unwrap_err();
            assert_eq!(error.raw_os_error(), Some(28), "threaded: {threaded}");
            assert!(full.kept.len() <= 100);
        }
    }
}

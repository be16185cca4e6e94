//! A stream source: stdin (`--input -`) or a file read once (`--input FILE`).

use std::io::{self, Read};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::intake::lines::LineSplitter;
use crate::intake::push;
use crate::metrics::Metrics;
use crate::queue::{Producer, Source};

/// Read `reader` to its end on a thread, queueing every line. A full queue
/// blocks the reader (backpressure); a closed queue (shutdown) ends it.
pub fn spawn(
    name: String,
    mut reader: Box<dyn Read + Send>,
    producer: Producer,
    source: Source,
    metrics: Arc<Metrics>,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("scbe-{}", source.as_str()))
        .spawn(move || {
            let mut splitter = LineSplitter::new();
            let mut buf = vec![0u8; 64 << 10];
            let mut open = true;
            while open {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => {
                        metrics.intake_read_errors.inc();
                        tracing::error!(input = %name, %err, "cannot read input; source closed");
                        return;
                    }
                };
                splitter.feed(&buf[..n], |line, full_len| {
                    open = push(&producer, line, full_len, source);
                    open
                });
            }
            if open {
                if let Some((line, full_len)) = splitter.finish() {
                    push(&producer, line, full_len, source);
                }
                tracing::debug!(input = %name, "end of input");
            }
        })
}

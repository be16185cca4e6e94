//! Replay's record output: written in input order on the thread that
//! gathers the rendered batches, and optionally hashed (`--digest`). With
//! several workers that thread does nothing else, so the `write` system calls
//! (tens of megabytes for a large corpus) overlap the decisions.

use std::io::{self, Write};

use sha2::{Digest, Sha256};

/// Where records go, in the order they are handed over.
pub struct RecordSink<'w> {
    out: &'w mut (dyn Write + Send),
    hasher: Option<Sha256>,
}

impl std::fmt::Debug for RecordSink<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordSink")
            .field("digest", &self.hasher.is_some())
            .finish()
    }
}

impl<'w> RecordSink<'w> {
    /// Write to `out`; hash what is written when `digest`.
    pub fn new(out: &'w mut (dyn Write + Send), digest: bool) -> RecordSink<'w> {
        RecordSink {
            out,
            hasher: digest.then(Sha256::new),
        }
    }

    /// Append rendered records.
    pub fn write(&mut self, text: &str) -> io::Result<()> {
        if let Some(h) = self.hasher.as_mut() {
            h.update(text.as_bytes());
        }
        self.out.write_all(text.as_bytes())
    }

    /// Push what was written so far to the output (live streams).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flush everything; the output's SHA-256 when a digest was asked for.
    pub fn finish(self) -> io::Result<Option<String>> {
        self.out.flush()?;
        Ok(self.hasher.map(|h| crate::replay::hex(&h.finalize())))
    }
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

    fn run(out: &mut (dyn Write + Send)) -> io::Result<Option<String>> {
        let mut sink = RecordSink::new(out, true);
        for i in 0..1000 {
            sink.write(&format!("record {i}\n"))?;
        }
        sink.flush()?;
        sink.finish()
    }

    #[test]
    fn the_digest_is_the_sha256_of_the_bytes_written() {
        let mut written = Vec::new();
        let digest = run(&mut written).unwrap().unwrap();
        assert_eq!(digest, crate::replay::hex(&Sha256::digest(&written)));
        assert_eq!(written.iter().filter(|&&b| b == b'\n').count(), 1000);
    }

    #[test]
    fn a_failing_output_reports_its_own_error() {
        let mut full = Full {
            room: 100,
            kept: Vec::new(),
        };
        let error = run(&mut full).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(28));
        assert!(full.kept.len() <= 100);
    }
}

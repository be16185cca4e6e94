//! Reading corpora: files, stdin, `.gz`; bounded lines; batches.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use anyhow::{Context, Result};
use scbe_core::limits::LINE_BYTES_MAX;

/// Lines per batch handed to the parallel stages. Small enough that a
/// batch's prepared events stay in cache between the stages and that the
/// pipeline fills quickly; measured faster than 8192 (and than 1024) on one
/// and two threads with `scbe-sim bench`.
pub const BATCH_LINES_MAX: usize = 2048;
/// The first batch's lines; each next batch doubles, up to
/// [`BATCH_LINES_MAX`]. The parallel stages start sooner, and the last
/// stages of one batch overlap the first of the next sooner, which matters
/// on short corpora.
pub const BATCH_LINES_FIRST: usize = 256;
/// How often a worker waiting for input checks whether the run was stopped.
const STOP_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

/// Bytes per batch (a batch closes at whichever bound it reaches first).
pub const BATCH_BYTES_MAX: usize = 8 << 20;

const _: () = assert!(
    BATCH_BYTES_MAX >= LINE_BYTES_MAX,
    "a maximal line fits one batch"
);

/// An opened corpus with its size (for progress) and a live count of the
/// bytes consumed from the underlying file.
pub struct Corpus {
    pub reader: Box<dyn Read + Send>,
    /// The input is a live stream (stdin): batches close as soon as no more
    /// input is ready, so decisions are not held back waiting for a full batch.
    pub live: bool,
    /// Size of the file on disk, when known.
    pub total_bytes: Option<u64>,
    pub bytes_read: Arc<AtomicU64>,
    pub name: String,
}

impl std::fmt::Debug for Corpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Corpus").field("name", &self.name).finish()
    }
}

impl Corpus {
    /// An in-memory corpus (tests, generated inputs).
    pub fn from_bytes(bytes: Vec<u8>, name: &str) -> Corpus {
        let total = bytes.len() as u64;
        Corpus {
            reader: Box::new(io::Cursor::new(bytes)),
            live: false,
            total_bytes: Some(total),
            bytes_read: Arc::new(AtomicU64::new(0)),
            name: name.to_owned(),
        }
    }
}

/// Open `-` (stdin), a file, or a `.gz` file (decompressed on the fly).
pub fn open_corpus(path: &str) -> Result<Corpus> {
    let bytes_read = Arc::new(AtomicU64::new(0));
    if path == "-" {
        let reader = CountingReader {
            inner: io::stdin(),
            count: Arc::clone(&bytes_read),
        };
        return Ok(Corpus {
            reader: Box::new(reader),
            live: true,
            total_bytes: None,
            bytes_read,
            name: "<stdin>".to_owned(),
        });
    }
    let file = File::open(path).with_context(|| format!("cannot open input {path}"))?;
    let total_bytes = file.metadata().ok().map(|m| m.len());
    let counted = CountingReader {
        inner: file,
        count: Arc::clone(&bytes_read),
    };
    let reader: Box<dyn Read + Send> = if Path::new(path).extension().is_some_and(|ext| ext == "gz")
    {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(counted)))
    } else {
        Box::new(counted)
    };
    Ok(Corpus {
        reader,
        live: false,
        total_bytes,
        bytes_read,
        name: path.to_owned(),
    })
}

struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// One line's place in a batch.
#[derive(Debug, Clone)]
pub struct LineSlot {
    /// 1-based line number in the input.
    pub line_no: u64,
    /// Byte range of the kept bytes in the batch buffer.
    pub start: usize,
    pub end: usize,
    /// Length of the whole line; larger than the kept bytes when over the cap.
    pub full_len: usize,
}

/// A run of consecutive input lines sharing one buffer.
#[derive(Debug, Default)]
pub struct Batch {
    pub data: Vec<u8>,
    pub lines: Vec<LineSlot>,
}

impl Batch {
    pub fn line(&self, slot: &LineSlot) -> &[u8] {
        &self.data[slot.start..slot.end]
    }
}

/// Splits input into lines as Python's universal-newline text mode does
/// (`\n`, `\r\n` and a lone `\r` all end a line), keeping at most
/// `LINE_BYTES_MAX + 1` bytes of any line so a huge line cannot exhaust memory.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: BufReader<R>,
    next_line_no: u64,
    /// The previous line ended in `\r`: a leading `\n` belongs to it.
    after_cr: bool,
    eof: bool,
    /// Close a batch when stdin has nothing ready (see [`Corpus::live`]).
    live: bool,
    /// Lines in the next batch (ramping up to `lines_max`).
    batch_lines: usize,
    /// Lines in a batch at most ([`BATCH_LINES_MAX`] unless set smaller).
    lines_max: usize,
    /// Bytes a line of the next batch is expected to take (the last batch's
    /// average, with a margin).
    line_bytes_expected: usize,
    /// A read that failed after the lines before it were batched: reported
    /// by the next call, so those lines are still decided.
    failed: Option<io::Error>,
}

/// The read buffer under [`LineReader`]. Small enough to stay in the core's
/// L2 cache beside a batch: against 1 MiB, a cache simulation with a 2 MiB
/// last level (`valgrind --tool=cachegrind --cache-sim=yes
/// --LL=2097152,16,64`, one-thread replay of the parity corpus) counts 8
/// data misses per event instead of 26 (256 KiB: 11), and with two workers
/// each mostly reads data its own read brought in. The extra read calls
/// (one per 128 KiB) cost nothing measurable.
const READ_BUFFER_BYTES: usize = 128 << 10;

/// [`LineReader::line_bytes_expected`] before any batch was read: about a
/// Falco line's size.
const LINE_BYTES_FIRST_GUESS: usize = 1536;

impl<R: Read> LineReader<R> {
    pub fn new(inner: R) -> LineReader<R> {
        LineReader {
            inner: BufReader::with_capacity(READ_BUFFER_BYTES, inner),
            next_line_no: 1,
            after_cr: false,
            eof: false,
            live: false,
            batch_lines: BATCH_LINES_FIRST,
            lines_max: BATCH_LINES_MAX,
            line_bytes_expected: LINE_BYTES_FIRST_GUESS,
            failed: None,
        }
    }

    /// Batches of at most `lines_max` lines (at least one).
    pub fn with_lines_max(mut self, lines_max: usize) -> LineReader<R> {
        self.lines_max = lines_max.clamp(1, BATCH_LINES_MAX);
        self.batch_lines = self.batch_lines.min(self.lines_max);
        self
    }

    /// A reader of stdin that closes each batch once no more input is ready.
    pub fn live(inner: R) -> LineReader<R> {
        LineReader {
            live: true,
            ..LineReader::new(inner)
        }
    }

    /// Fill `batch` with the next lines; `false` at end of input. A read
    /// error (a truncated `.gz`, an I/O error) comes after every whole line
    /// before it has been returned, and says after which line the input
    /// broke; the partial line it cut is not a line.
    pub fn next_batch(&mut self, batch: &mut Batch) -> io::Result<bool> {
        batch.data.clear();
        batch.lines.clear();
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        // Room for the whole batch up front, in a fresh buffer when the old
        // one is too small: growing it midway, or even reserving while
        // empty, copies its old contents (megabytes, while batches ramp up).
        let bytes_wanted = self
            .batch_lines
            .saturating_mul(self.line_bytes_expected)
            .min(BATCH_BYTES_MAX);
        if batch.data.capacity() < bytes_wanted {
            batch.data = Vec::with_capacity(bytes_wanted);
        }
        if batch.lines.capacity() < self.batch_lines {
            batch.lines = Vec::with_capacity(self.batch_lines);
        }
        while !self.eof
            && batch.lines.len() < self.batch_lines
            && batch.data.len() < BATCH_BYTES_MAX - LINE_BYTES_MAX
        {
            if self.live
                && !batch.lines.is_empty()
                && self.inner.buffer().is_empty()
                && !stdin_ready()
            {
                break;
            }
            let line_start = batch.data.len();
            if let Err(e) = self.read_line(batch) {
                batch.data.truncate(line_start);
                let e = match self.next_line_no - 1 {
                    0 => io::Error::new(e.kind(), format!("{e} (before the first line)")),
                    whole => io::Error::new(e.kind(), format!("{e} (after line {whole})")),
                };
                self.eof = true;
                if batch.lines.is_empty() {
                    return Err(e);
                }
                self.failed = Some(e);
                break;
            }
        }
        self.batch_lines = (self.batch_lines * 2).min(self.lines_max);
        if !batch.lines.is_empty() {
            let average = batch.data.len() / batch.lines.len();
            self.line_bytes_expected = (average + average / 4).max(64);
        }
        Ok(!batch.lines.is_empty())
    }

    fn read_line(&mut self, batch: &mut Batch) -> io::Result<()> {
        let start = batch.data.len();
        let keep_max = LINE_BYTES_MAX + 1;
        let mut full_len = 0usize;
        let mut saw_any = false;
        loop {
            let available = match self.inner.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                self.eof = true;
                break;
            }
            if self.after_cr {
                self.after_cr = false;
                if available[0] == b'\n' {
                    self.inner.consume(1);
                    continue;
                }
            }
            saw_any = true;
            match memchr::memchr2(b'\n', b'\r', available) {
                Some(i) => {
                    let kept = i.min(keep_max.saturating_sub(full_len));
                    batch.data.extend_from_slice(&available[..kept]);
                    full_len += i;
                    self.after_cr = available[i] == b'\r';
                    self.inner.consume(i + 1);
                    self.push(batch, start, full_len);
                    return Ok(());
                }
                None => {
                    let n = available.len();
                    let kept = n.min(keep_max.saturating_sub(full_len));
                    batch.data.extend_from_slice(&available[..kept]);
                    full_len += n;
                    self.inner.consume(n);
                }
            }
        }
        if saw_any && full_len > 0 {
            self.push(batch, start, full_len);
        }
        Ok(())
    }

    fn push(&mut self, batch: &mut Batch, start: usize, full_len: usize) {
        batch.lines.push(LineSlot {
            line_no: self.next_line_no,
            start,
            end: batch.data.len(),
            full_len,
        });
        self.next_line_no += 1;
    }
}

/// Batches of input lines, bounded whatever the corpus size: read ahead by a
/// reader thread (at most two in flight, buffers recycled), or read in turn
/// on the caller's thread (a run on one thread; replay's workers, who take
/// turns with one under a lock).
pub struct BatchReader {
    source: BatchSource,
}

enum BatchSource {
    Thread {
        batches: Option<mpsc::Receiver<io::Result<Batch>>>,
        recycle: mpsc::Sender<Batch>,
        handle: Option<std::thread::JoinHandle<()>>,
    },
    Inline {
        lines: LineReader<Box<dyn Read + Send>>,
        /// A consumed batch whose buffers the next read fills.
        spare: Option<Batch>,
        done: bool,
    },
}

impl std::fmt::Debug for BatchReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.source {
            BatchSource::Thread { .. } => "thread",
            BatchSource::Inline { .. } => "inline",
        };
        f.debug_struct("BatchReader").field("mode", &mode).finish()
    }
}

impl BatchReader {
    /// Start reading `reader` on a reader thread (a live stream when `live`,
    /// see [`Corpus::live`]).
    pub fn spawn(reader: Box<dyn Read + Send>, live: bool) -> io::Result<BatchReader> {
        BatchReader::spawn_with_lines_max(reader, live, BATCH_LINES_MAX)
    }

    /// [`Self::spawn`] with batches of at most `lines_max` lines.
    pub fn spawn_with_lines_max(
        reader: Box<dyn Read + Send>,
        live: bool,
        lines_max: usize,
    ) -> io::Result<BatchReader> {
        let (batch_tx, batch_rx) = mpsc::sync_channel::<io::Result<Batch>>(2);
        let (recycle_tx, recycle_rx) = mpsc::channel::<Batch>();
        let handle = std::thread::Builder::new()
            .name("scbe-reader".to_owned())
            .spawn(move || {
                let mut lines = line_reader(reader, live).with_lines_max(lines_max);
                loop {
                    let mut batch = recycle_rx.try_recv().unwrap_or_default();
                    match lines.next_batch(&mut batch) {
                        Ok(true) => {
                            if batch_tx.send(Ok(batch)).is_err() {
                                return;
                            }
                        }
                        Ok(false) => return,
                        Err(e) => {
                            let _ = batch_tx.send(Err(e));
                            return;
                        }
                    }
                }
            })?;
        Ok(BatchReader {
            source: BatchSource::Thread {
                batches: Some(batch_rx),
                recycle: recycle_tx,
                handle: Some(handle),
            },
        })
    }

    /// Read `reader` on the caller's thread, one batch per [`Self::next_batch`]:
    /// for runs asked to use a single thread.
    pub fn inline(reader: Box<dyn Read + Send>, live: bool) -> BatchReader {
        BatchReader::inline_with_lines_max(reader, live, BATCH_LINES_MAX)
    }

    /// [`Self::inline`] with batches of at most `lines_max` lines: for
    /// workers that take turns reading a file (each batch is then read by
    /// the thread that prepares it).
    pub fn inline_with_lines_max(
        reader: Box<dyn Read + Send>,
        live: bool,
        lines_max: usize,
    ) -> BatchReader {
        BatchReader {
            source: BatchSource::Inline {
                lines: line_reader(reader, live).with_lines_max(lines_max),
                spare: None,
                done: false,
            },
        }
    }

    /// A reader thread, or inline when `threads` is 1.
    pub fn for_threads(
        reader: Box<dyn Read + Send>,
        live: bool,
        threads: usize,
    ) -> io::Result<BatchReader> {
        if threads <= 1 {
            Ok(BatchReader::inline(reader, live))
        } else {
            BatchReader::spawn(reader, live)
        }
    }

    /// The next batch, `None` at the end of the input.
    pub fn next_batch(&mut self) -> Option<io::Result<Batch>> {
        match &mut self.source {
            BatchSource::Thread { batches, .. } => batches.as_ref()?.recv().ok(),
            BatchSource::Inline { lines, spare, done } => {
                if *done {
                    return None;
                }
                let mut batch = spare.take().unwrap_or_default();
                match lines.next_batch(&mut batch) {
                    Ok(true) => Some(Ok(batch)),
                    Ok(false) => {
                        *done = true;
                        None
                    }
                    Err(e) => {
                        *done = true;
                        Some(Err(e))
                    }
                }
            }
        }
    }

    /// A handle that gives buffers back to this reader's thread without
    /// holding the reader (`None` for an inline reader): workers recycle
    /// while another worker waits, holding the reader, for more input.
    pub fn recycler(&self) -> Option<mpsc::Sender<Batch>> {
        match &self.source {
            BatchSource::Thread { recycle, .. } => Some(recycle.clone()),
            BatchSource::Inline { .. } => None,
        }
    }

    /// [`Self::next_batch`], but `None` soon after `stop` is set, even while
    /// a live stream is quiet: a stopped run must not wait for its input.
    pub fn next_batch_unless(&mut self, stop: &AtomicBool) -> Option<io::Result<Batch>> {
        let BatchSource::Thread { batches, .. } = &mut self.source else {
            return self.next_batch();
        };
        let batches = batches.as_ref()?;
        loop {
            match batches.recv_timeout(STOP_POLL_INTERVAL) {
                Ok(batch) => return Some(batch),
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(mpsc::RecvTimeoutError::Timeout) if stop.load(Ordering::Relaxed) => {
                    return None;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Hand a consumed batch's buffers back to the reader (inline, the next
    /// read fills them: replay's workers each hand theirs back just before
    /// they read, so each reuses its own).
    pub fn recycle(&mut self, batch: Batch) {
        match &mut self.source {
            BatchSource::Thread { recycle, .. } => {
                let _ = recycle.send(batch);
            }
            BatchSource::Inline { spare, .. } => *spare = Some(batch),
        }
    }

    /// Stop reading. A reader that ran to the end of its input is joined; one
    /// stopped early (`--max-events`) may be blocked on a live stdin, so it
    /// is left to end with the process.
    pub fn finish(mut self, reached_end: bool) {
        if let BatchSource::Thread {
            batches, handle, ..
        } = &mut self.source
        {
            drop(batches.take());
            if let Some(handle) = handle.take() {
                if reached_end {
                    let _ = handle.join();
                }
            }
        }
    }
}

fn line_reader(reader: Box<dyn Read + Send>, live: bool) -> LineReader<Box<dyn Read + Send>> {
    if live {
        LineReader::live(reader)
    } else {
        LineReader::new(reader)
    }
}

/// Whether stdin has input (or end of file) ready without blocking.
fn stdin_ready() -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let stdin = io::stdin();
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    // On error, behave as if input were ready: the read reports the problem.
    poll(&mut fds, PollTimeout::ZERO).map_or(true, |n| n > 0)
}

pub use scbe_core::falco::raw_prefix;

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<(u64, Vec<u8>, usize)> {
        let mut reader = LineReader::new(input);
        let mut batch = Batch::default();
        let mut out = Vec::new();
        while reader.next_batch(&mut batch).unwrap() {
            for slot in &batch.lines {
                out.push((slot.line_no, batch.line(slot).to_vec(), slot.full_len));
            }
        }
        out
    }

    #[test]
    fn universal_newlines() {
        let got = lines(b"a\nb\r\nc\rd\n\ne");
        let texts: Vec<&[u8]> = got.iter().map(|(_, t, _)| t.as_slice()).collect();
        assert_eq!(texts, vec![&b"a"[..], b"b", b"c", b"d", b"", b"e"]);
        assert_eq!(got.last().unwrap().0, 6);
    }

    #[test]
    fn huge_lines_are_capped_not_buffered() {
        let mut input = vec![b'x'; LINE_BYTES_MAX * 3];
        input.extend_from_slice(b"\n{}\n");
        let got = lines(&input);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1.len(), LINE_BYTES_MAX + 1);
        assert_eq!(got[0].2, LINE_BYTES_MAX * 3);
        assert_eq!(got[1].1, b"{}");
    }

    /// Yields `good`, then fails as a truncated `.gz` does.
    struct Broken<'a> {
        good: &'a [u8],
    }

    impl Read for Broken<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.good.is_empty() {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "stream cut"));
            }
            let n = self.good.len().min(buf.len()).min(3);
            buf[..n].copy_from_slice(&self.good[..n]);
            self.good = &self.good[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_failed_read_comes_after_every_whole_line_before_it() {
        let mut reader = LineReader::new(Broken {
            good: b"{}\n[]\npartial",
        });
        let mut batch = Batch::default();
        assert!(reader.next_batch(&mut batch).unwrap());
        let texts: Vec<&[u8]> = batch.lines.iter().map(|slot| batch.line(slot)).collect();
        assert_eq!(texts, vec![&b"{}"[..], b"[]"]);
        let error = reader.next_batch(&mut batch).unwrap_err();
        assert_eq!(error.to_string(), "stream cut (after line 2)");
        assert!(!reader.next_batch(&mut batch).unwrap());

        let mut reader = LineReader::new(Broken { good: b"" });
        let error = reader.next_batch(&mut batch).unwrap_err();
        assert_eq!(error.to_string(), "stream cut (before the first line)");
    }
}

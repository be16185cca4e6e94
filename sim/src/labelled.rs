//! The front end shared by `evaluate`, `tune` and `diff`: read a corpus in
//! batches, prepare every line in parallel (parse, map, scan, score — exactly
//! the stateless stage replay runs) together with its ground-truth label, and
//! hand the results to a sequential sink in input order.

use anyhow::{Context, Result};
use rayon::prelude::*;
use scbe_core::falco::LineError;
use scbe_core::limits::LINE_BYTES_MAX;
use scbe_core::membrane::ScanScratch;
use scbe_core::{prepare_line, Gate, MappingOptions, Prepared, PreparedLine};

use crate::input::{BatchReader, Corpus};
use crate::label::{read_label, Label};

/// One input line after the stateless stage.
#[derive(Debug)]
pub enum Item {
    Blank,
    Error {
        line_no: u64,
        error: LineError,
    },
    Event {
        line_no: u64,
        prepared: Box<Prepared>,
        label: Option<Label>,
    },
}

/// Prepare every line of `corpus` under `gate`, in parallel on `threads`
/// workers, and feed the items to `sink` in input order.
pub fn for_each_prepared(
    gate: &Gate,
    mapping: &MappingOptions,
    corpus: Corpus,
    threads: usize,
    sink: impl FnMut(Item) -> Result<()>,
) -> Result<()> {
    for_each_line(
        corpus,
        threads,
        |line, scratch| prepare_item(gate, mapping, line, scratch),
        sink,
    )
}

/// One input line as the reader kept it.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// The kept bytes (at most `LINE_BYTES_MAX + 1`).
    pub raw: &'a [u8],
    /// 1-based line number.
    pub line_no: u64,
    /// Length of the whole line, beyond the kept bytes.
    pub full_len: usize,
}

/// One raw line through the stateless stage, with its label.
pub fn prepare_item(
    gate: &Gate,
    mapping: &MappingOptions,
    line: Line<'_>,
    scratch: &mut ScanScratch,
) -> Item {
    let Line {
        raw,
        line_no,
        full_len,
    } = line;
    if full_len > LINE_BYTES_MAX {
        return Item::Error {
            line_no,
            error: LineError::TooLong { bytes: full_len },
        };
    }
    match prepare_line(gate, mapping, raw, scratch) {
        PreparedLine::Blank => Item::Blank,
        PreparedLine::Error(error) => Item::Error { line_no, error },
        PreparedLine::Event(prepared) => Item::Event {
            line_no,
            prepared,
            label: read_label(raw),
        },
    }
}

/// Map every line of `corpus` with `map` in parallel, then feed the results
/// to `sink` in input order. Memory is bounded by two batches in flight.
pub fn for_each_line<T: Send>(
    corpus: Corpus,
    threads: usize,
    map: impl Fn(Line<'_>, &mut ScanScratch) -> T + Sync,
    mut sink: impl FnMut(T) -> Result<()>,
) -> Result<()> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("scbe-lab-{i}"))
        .build()
        .context("cannot start the thread pool")?;
    let mut reader = BatchReader::for_threads(corpus.reader, corpus.live, threads)
        .context("cannot start the reader thread")?;
    let result = (|| -> Result<()> {
        while let Some(batch) = reader.next_batch() {
            let batch = batch.context("cannot read input")?;
            let items: Vec<T> = pool.install(|| {
                batch
                    .lines
                    .par_iter()
                    .map_init(ScanScratch::default, |scratch, slot| {
                        let line = Line {
                            raw: batch.line(slot),
                            line_no: slot.line_no,
                            full_len: slot.full_len,
                        };
                        map(line, scratch)
                    })
                    .collect()
            });
            reader.recycle(batch);
            for item in items {
                sink(item)?;
            }
        }
        Ok(())
    })();
    // On an error the remaining input is not read to its end.
    reader.finish(result.is_ok());
    result
}

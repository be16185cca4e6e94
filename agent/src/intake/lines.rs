//! Incremental line splitting for live streams.
//!
//! Input arrives in chunks of any size (a pipe, a growing file); a line may be
//! split across chunks, and the last one may not be complete yet. Lines end as
//! in Python's universal-newline text mode, which the reference monitor read
//! with (`\n`, `\r\n` and a lone `\r`), so the agent sees the lines `scbe-sim
//! replay` sees. At most `LINE_BYTES_MAX + 1` bytes of a line are kept; the
//! full length is reported so an over-long line is an error with its size.

use scbe_core::limits::LINE_BYTES_MAX;

/// Bytes kept of one line: one more than the limit, so "too long" is visible.
const KEEP_BYTES_MAX: usize = LINE_BYTES_MAX + 1;

/// Splits a byte stream into lines, chunk by chunk.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
    /// Length of the partial line, including bytes not kept.
    full_len: usize,
    /// The previous chunk ended a line with `\r`: a leading `\n` belongs to it.
    after_cr: bool,
    /// Bytes fed since the last line ended (a line of length 0 still counts).
    pending: bool,
}

impl LineSplitter {
    pub fn new() -> LineSplitter {
        LineSplitter::default()
    }

    /// Feed a chunk; `emit(line, full_len)` is called for each completed line
    /// and returns `false` to stop early (the rest of the chunk is dropped).
    pub fn feed(&mut self, mut chunk: &[u8], mut emit: impl FnMut(Vec<u8>, usize) -> bool) {
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
        }
        while !chunk.is_empty() {
            match chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(i) => {
                    self.keep(&chunk[..i]);
                    let cr = chunk[i] == b'\r';
                    let mut next = i + 1;
                    if cr {
                        match chunk.get(next) {
                            Some(b'\n') => next += 1,
                            Some(_) => {}
                            None => self.after_cr = true,
                        }
                    }
                    chunk = &chunk[next..];
                    let (line, full_len) = self.take();
                    if !emit(line, full_len) {
                        return;
                    }
                }
                None => {
                    self.keep(chunk);
                    self.pending = true;
                    chunk = &[];
                }
            }
        }
    }

    /// End of input: the unterminated last line, if any.
    pub fn finish(&mut self) -> Option<(Vec<u8>, usize)> {
        self.after_cr = false;
        if self.pending && self.full_len > 0 {
            Some(self.take())
        } else {
            self.take();
            None
        }
    }

    /// Forget a partial line (the followed file was truncated under it).
    pub fn reset(&mut self) {
        *self = LineSplitter::default();
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = KEEP_BYTES_MAX.saturating_sub(self.partial.len());
        self.partial
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.full_len += bytes.len();
    }

    fn take(&mut self) -> (Vec<u8>, usize) {
        self.pending = false;
        let full_len = std::mem::take(&mut self.full_len);
        (std::mem::take(&mut self.partial), full_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<(Vec<u8>, usize)> {
        let mut splitter = LineSplitter::new();
        let mut out = Vec::new();
        for chunk in chunks {
            splitter.feed(chunk, |line, len| {
                out.push((line, len));
                true
            });
        }
        out.extend(splitter.finish());
        out
    }

    fn texts(lines: &[(Vec<u8>, usize)]) -> Vec<&[u8]> {
        lines.iter().map(|(l, _)| l.as_slice()).collect()
    }

    #[test]
    fn universal_newlines_across_chunks() {
        let got = split(&[b"a\nb\r", b"\nc\rd", b"\n\ne"]);
        assert_eq!(texts(&got), vec![&b"a"[..], b"b", b"c", b"d", b"", b"e"]);
    }

    #[test]
    fn same_lines_as_one_chunk_for_every_split_point() {
        let input = b"{\"a\":1}\r\n\r{}\nxyz\r";
        let whole = split(&[input]);
        for cut in 0..input.len() {
            let (x, y) = input.split_at(cut);
            assert_eq!(split(&[x, y]), whole, "split at {cut}");
        }
    }

    #[test]
    fn over_long_lines_keep_a_bounded_prefix_and_their_length() {
        let big = vec![b'x'; LINE_BYTES_MAX + 10];
        let got = split(&[&big[..LINE_BYTES_MAX], &big[LINE_BYTES_MAX..], b"\n{}"]);
        assert_eq!(got[0].0.len(), LINE_BYTES_MAX + 1);
        assert_eq!(got[0].1, LINE_BYTES_MAX + 10);
        assert_eq!(got[1].0, b"{}");
    }

    #[test]
    fn no_line_without_bytes() {
        assert!(split(&[b""]).is_empty());
        assert_eq!(split(&[b"\n"]).len(), 1);
    }
}

//! Structured logs on stderr with `tracing`, human or JSON.

use std::io::{self, IsTerminal, Write};

use tracing_subscriber::EnvFilter;

/// Install the global subscriber. `RUST_LOG` overrides `level`.
pub fn init(format: &str, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal());
    let result = if format == "json" {
        builder.with_writer(std::io::stderr).json().try_init()
    } else {
        builder.with_writer(|| OneLineStderr).try_init()
    };
    // Already installed (tests calling twice): keep the first.
    let _ = result;
}

/// stderr for human-format logs, where one log line must stay one line.
/// Logged fields carry event content (process names, keys, paths, command
/// lines) that an attacker controls; a raw `\n` or `\r` in them would start
/// a forged log line. The subscriber writes each event with one `write_all`,
/// so interior line breaks are written as the escapes `\n` and `\r`.
/// (JSON logs escape them already.)
#[derive(Debug, Clone, Copy)]
struct OneLineStderr;

impl Write for OneLineStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        io::stderr().write_all(&one_line(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// `buf` with every `\n`/`\r` but a final newline escaped.
fn one_line(buf: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let body = buf.strip_suffix(b"\n").unwrap_or(buf);
    if !body.iter().any(|&b| b == b'\n' || b == b'\r') {
        return buf.into();
    }
    let mut out = Vec::with_capacity(buf.len() + 16);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b => out.push(b),
        }
    }
    if body.len() < buf.len() {
        out.push(b'\n');
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_line_stays_one_line() {
        assert_eq!(&*one_line(b"plain\n"), b"plain\n");
        assert_eq!(&*one_line(b"name=a\nFAKE b\r\n"), b"name=a\\nFAKE b\\r\n");
        assert_eq!(&*one_line(b"no end\nhere"), b"no end\\nhere");
    }
}

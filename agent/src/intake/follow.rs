//! `--follow FILE`: tail a Falco `file_output` across rotation, like `tail -F`.
//!
//! Rotation by rename (logrotate's default) is seen as a new inode at the
//! path: the old file is read to its end, then the new one from its start.
//! Rotation by `copytruncate` is seen as the file shrinking below the read
//! offset: reading restarts at 0. A missing path is waited for. By default the
//! first file is read from its end, so a restart does not re-enforce old alerts.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::control::Stop;
use crate::intake::lines::LineSplitter;
use crate::intake::push;
use crate::limits::FOLLOW_POLL;
use crate::metrics::Metrics;
use crate::queue::{Producer, Source};

struct Open {
    file: File,
    dev: u64,
    ino: u64,
    offset: u64,
}

/// Follow `path` until `stop` is requested or the queue closes.
pub fn spawn(
    path: PathBuf,
    from_start: bool,
    producer: Producer,
    stop: Arc<Stop>,
    metrics: Arc<Metrics>,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("scbe-follow".to_owned())
        .spawn(move || {
            let mut follower = Follower {
                path,
                current: None,
                splitter: LineSplitter::new(),
                producer,
                metrics,
                first_open: !from_start,
            };
            while !stop.is_requested() {
                match follower.poll() {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(err) => {
                        follower.metrics.intake_read_errors.inc();
                        tracing::warn!(path = %follower.path.display(), %err, "follow: read failed; retrying");
                        follower.current = None;
                    }
                }
                if stop.wait_timeout(FOLLOW_POLL) {
                    break;
                }
            }
        })
}

struct Follower {
    path: PathBuf,
    current: Option<Open>,
    splitter: LineSplitter,
    producer: Producer,
    metrics: Arc<Metrics>,
    /// The next open is the first one: start at the end (unless --follow-from-start).
    first_open: bool,
}

impl Follower {
    /// Read what is new; `Ok(false)` when the queue has closed.
    fn poll(&mut self) -> io::Result<bool> {
        if self.current.is_none() && !self.open()? {
            return Ok(true);
        }
        if !self.drain()? {
            return Ok(false);
        }
        let Some(open) = self.current.as_mut() else {
            return Ok(true);
        };
        match std::fs::metadata(&self.path) {
            // Renamed away and not recreated yet: keep the old file.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e),
            Ok(meta) if meta.dev() != open.dev || meta.ino() != open.ino => {
                // Rotated: finish the old file (writers may have added to it
                // until the rename), then switch to the new one from its start.
                if !self.drain()? {
                    return Ok(false);
                }
                if let Some((line, full_len)) = self.splitter.finish() {
                    if !push(&self.producer, line, full_len, Source::Follow) {
                        return Ok(false);
                    }
                }
                tracing::info!(path = %self.path.display(), "follow: file rotated; reading the new file");
                self.metrics.follow_rotations.inc();
                self.current = None;
                self.open()?;
                self.drain()
            }
            Ok(meta) if meta.len() < open.offset => {
                tracing::info!(path = %self.path.display(), "follow: file truncated; reading from the start");
                self.metrics.follow_rotations.inc();
                open.file.seek(SeekFrom::Start(0))?;
                open.offset = 0;
                self.splitter.reset();
                self.drain()
            }
            Ok(_) => Ok(true),
        }
    }

    /// Open the path; `Ok(false)` when it does not exist yet.
    fn open(&mut self) -> io::Result<bool> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // A file that appears later is new: read all of it.
                self.first_open = false;
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        let offset = if std::mem::take(&mut self.first_open) {
            file.seek(SeekFrom::End(0))?
        } else {
            0
        };
        tracing::info!(path = %self.path.display(), offset, "follow: file opened");
        self.current = Some(Open {
            file,
            dev: meta.dev(),
            ino: meta.ino(),
            offset,
        });
        Ok(true)
    }

    /// Read to the current end of file; `Ok(false)` when the queue has closed.
    fn drain(&mut self) -> io::Result<bool> {
        let Some(open) = self.current.as_mut() else {
            return Ok(true);
        };
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match open.file.read(&mut buf) {
                Ok(0) => return Ok(true),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            open.offset += n as u64;
            let mut queued = true;
            let producer = &self.producer;
            self.splitter.feed(&buf[..n], |line, full_len| {
                queued = push(producer, line, full_len, Source::Follow);
                queued
            });
            if !queued {
                return Ok(false);
            }
        }
    }
}

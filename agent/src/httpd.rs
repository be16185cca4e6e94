//! A small HTTP/1.1 server for the intake and metrics endpoints, bounded in
//! every dimension a client controls.
//!
//! Why not a general-purpose server: the agent must stay responsive when a
//! client misbehaves. Here a fixed pool of threads accepts connections (more
//! clients wait in the kernel's backlog, no thread per connection); every
//! request has a deadline from its first byte to its last (a client that
//! stops sending gets 408 and is disconnected); idle keep-alive connections
//! are closed; heads and bodies have byte limits checked *before* buffering
//! (413 without reading a declared-too-large body); and a refused client's
//! unread data is drained briefly before closing, so it receives the answer
//! instead of a reset. Keep-alive, `Expect: 100-continue` and chunked bodies
//! are supported, which is what Falco's libcurl and Falcosidekick's Go
//! client send.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::control::Stop;
use crate::limits::{
    HTTP_HEADERS_MAX, HTTP_HEAD_BYTES_MAX, HTTP_IDLE_TIMEOUT, HTTP_LINGER, HTTP_LINGER_BYTES_MAX,
    HTTP_POLL, HTTP_REQUEST_TIMEOUT,
};

/// A request's method, target and headers (the body is read separately).
#[derive(Debug, Clone)]
pub struct Head {
    pub method: String,
    /// The target without its query string.
    pub path: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub content_length: Option<usize>,
    pub chunked: bool,
    pub peer: SocketAddr,
}

impl Head {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    fn has_body(&self) -> bool {
        self.chunked || self.content_length.is_some_and(|n| n > 0)
    }
}

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::text(status, "application/json", format!("{value}\n"))
    }

    /// `{"error": message}`
    pub fn error(status: u16, message: &str) -> Response {
        Response::json(status, &serde_json::json!({ "error": message }))
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

/// What an endpoint does with requests.
pub trait Handler: Send + Sync {
    /// Answer from the head alone (health checks, refusals) — the body, if
    /// any, is then not read. `None` reads the body and calls [`Handler::body`].
    fn head(&self, head: &Head) -> Option<Response>;
    /// Answer a request whose body was read (within the body limit).
    fn body(&self, head: &Head, body: Vec<u8>) -> Response;
    /// The server refused a request itself (400, 408, 413, 431, 501), for counting.
    fn refused(&self, status: u16) {
        let _ = status;
    }
}

/// A bound listener, not yet serving.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
}

/// A serving endpoint; [`Serving::join`] after the stop request.
#[derive(Debug)]
pub struct Serving {
    threads: Vec<JoinHandle<()>>,
    addr: SocketAddr,
}

impl Server {
    pub fn bind(addr: SocketAddr) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        Ok(Server { listener, addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serve with `workers` threads (the most connections served at once)
    /// until `stop`; bodies above `body_bytes_max` are refused with 413.
    pub fn serve(
        self,
        name: &str,
        workers: usize,
        body_bytes_max: usize,
        handler: Arc<dyn Handler>,
        stop: Arc<Stop>,
    ) -> io::Result<Serving> {
        let listener = Arc::new(self.listener);
        let threads = (0..workers.max(1))
            .map(|i| {
                let (listener, handler, stop) =
                    (Arc::clone(&listener), Arc::clone(&handler), Arc::clone(&stop));
                std::thread::Builder::new()
                    .name(format!("scbe-{name}-{i}"))
                    .spawn(move || {
                        while !stop.is_requested() {
                            match listener.accept() {
                                Ok((stream, peer)) => {
                                    if stop.is_requested() {
                                        return;
                                    }
                                    let mut conn = Connection {
                                        reader: BufReader::new(DeadlineStream::new(stream)),
                                        peer,
                                        handler: handler.as_ref(),
                                        stop: &stop,
                                        body_bytes_max,
                                    };
                                    // A bug in a handler must cost one
                                    // connection, never a serving thread.
                                    match catch_unwind(AssertUnwindSafe(|| conn.serve())) {
                                        Ok(Ok(())) => {}
                                        Ok(Err(err)) => {
                                            tracing::debug!(%peer, %err, "connection ended with an error");
                                        }
                                        Err(_) => {
                                            tracing::error!(%peer, "internal error while serving a connection; connection dropped");
                                        }
                                    }
                                }
                                Err(err) => {
                                    tracing::warn!(%err, "accept failed");
                                    // Out of descriptors and similar: let it pass.
                                    stop.wait_timeout(HTTP_POLL);
                                }
                            }
                        }
                    })
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Serving {
            threads,
            addr: self.addr,
        })
    }
}

impl Serving {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// After the stop request: wake every thread blocked in `accept` (one
    /// connection each) and wait for them. A request in progress finishes
    /// first, within its deadline.
    pub fn join(self) {
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => [127, 0, 0, 1].into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        for _ in &self.threads {
            let _ = TcpStream::connect_timeout(&wake, HTTP_POLL);
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// A socket whose reads fail with `TimedOut` once a deadline has passed.
#[derive(Debug)]
struct DeadlineStream {
    stream: TcpStream,
    deadline: Option<Instant>,
}

impl DeadlineStream {
    fn new(stream: TcpStream) -> DeadlineStream {
        DeadlineStream {
            stream,
            deadline: None,
        }
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let timeout = match self.deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                left
            }
            None => HTTP_REQUEST_TIMEOUT,
        };
        self.stream.set_read_timeout(Some(timeout))?;
        self.stream.read(buf).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => io::ErrorKind::TimedOut.into(),
            _ => e,
        })
    }
}

/// Why a request could not be read.
enum ReadError {
    /// The peer closed the connection before a request began.
    Closed,
    /// Status and message to answer before closing.
    Answer(u16, String),
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> ReadError {
        match e.kind() {
            io::ErrorKind::TimedOut => {
                ReadError::Answer(408, "request not received in time".to_owned())
            }
            io::ErrorKind::UnexpectedEof => ReadError::Closed,
            _ => ReadError::Io(e),
        }
    }
}

struct Connection<'a> {
    reader: BufReader<DeadlineStream>,
    peer: SocketAddr,
    handler: &'a dyn Handler,
    stop: &'a Stop,
    body_bytes_max: usize,
}

impl Connection<'_> {
    fn stream(&mut self) -> &mut TcpStream {
        &mut self.reader.get_mut().stream
    }

    fn serve(&mut self) -> io::Result<()> {
        self.stream()
            .set_write_timeout(Some(HTTP_REQUEST_TIMEOUT))?;
        let mut first = true;
        loop {
            if !first && !self.wait_for_next_request()? {
                return Ok(());
            }
            first = false;
            self.reader.get_mut().deadline = Some(Instant::now() + HTTP_REQUEST_TIMEOUT);
            let (head, keep_alive) = match self.read_head() {
                Ok(parsed) => parsed,
                Err(ReadError::Closed) => return Ok(()),
                Err(ReadError::Io(e)) => return Err(e),
                Err(ReadError::Answer(status, message)) => {
                    self.handler.refused(status);
                    return self.answer_and_close(Response::error(status, &message));
                }
            };
            if let Some(response) = self.handler.head(&head) {
                if head.has_body() {
                    // The body was not read: this connection cannot go on.
                    return self.answer_and_close(response);
                }
                self.write(&response, keep_alive)?;
                if !keep_alive {
                    return Ok(());
                }
                continue;
            }
            if head.content_length.is_some_and(|n| n > self.body_bytes_max) {
                let message = format!("body exceeds the limit of {} bytes", self.body_bytes_max);
                self.handler.refused(413);
                return self.answer_and_close(Response::error(413, &message));
            }
            if head
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"))
            {
                self.stream().write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            }
            let body = match self.read_body(&head) {
                Ok(body) => body,
                Err(ReadError::Closed) => return Ok(()),
                Err(ReadError::Io(e)) => return Err(e),
                Err(ReadError::Answer(status, message)) => {
                    self.handler.refused(status);
                    return self.answer_and_close(Response::error(status, &message));
                }
            };
            let response = self.handler.body(&head, body);
            self.write(&response, keep_alive)?;
            if !keep_alive {
                return Ok(());
            }
        }
    }

    /// Between keep-alive requests: wait for the next one's first byte,
    /// giving up when idle too long or when the agent stops.
    fn wait_for_next_request(&mut self) -> io::Result<bool> {
        if !self.reader.buffer().is_empty() {
            return Ok(true);
        }
        let idle_since = Instant::now();
        let mut byte = [0u8; 1];
        loop {
            if self.stop.is_requested() || idle_since.elapsed() >= HTTP_IDLE_TIMEOUT {
                return Ok(false);
            }
            let stream = self.stream();
            stream.set_read_timeout(Some(HTTP_POLL))?;
            match stream.peek(&mut byte) {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => return Ok(false),
            }
        }
    }

    /// Read and parse the request line and headers.
    fn read_head(&mut self) -> Result<(Head, bool), ReadError> {
        let mut raw = Vec::with_capacity(1024);
        loop {
            let available = match self.reader.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if raw.is_empty() && e.kind() != io::ErrorKind::TimedOut => {
                    return Err(ReadError::Io(e))
                }
                Err(e) => return Err(e.into()),
            };
            if available.is_empty() {
                return Err(if raw.is_empty() {
                    ReadError::Closed
                } else {
                    ReadError::Answer(400, "connection closed inside the request head".to_owned())
                });
            }
            // Look for the blank line, including one split across reads.
            let start = raw.len().saturating_sub(3);
            let take = available.len().min(HTTP_HEAD_BYTES_MAX + 1 - raw.len());
            raw.extend_from_slice(&available[..take]);
            if let Some(end) = find(&raw[start..], b"\r\n\r\n").map(|i| start + i + 4) {
                // Give back what belongs to the body.
                let extra = raw.len() - end;
                self.reader.consume(take - extra);
                raw.truncate(end);
                break;
            }
            self.reader.consume(take);
            if raw.len() > HTTP_HEAD_BYTES_MAX {
                return Err(ReadError::Answer(
                    431,
                    format!("request head exceeds {HTTP_HEAD_BYTES_MAX} bytes"),
                ));
            }
        }
        let mut headers = [httparse::EMPTY_HEADER; HTTP_HEADERS_MAX];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&raw) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err(ReadError::Answer(400, "incomplete request head".to_owned()))
            }
            Err(e) => return Err(ReadError::Answer(400, format!("bad request head: {e}"))),
        }
        let version = request.version.unwrap_or(1);
        let headers: Vec<(String, Vec<u8>)> = request
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), h.value.to_vec()))
            .collect();
        let mut head = Head {
            method: request.method.unwrap_or("").to_owned(),
            path: request
                .path
                .unwrap_or("")
                .split('?')
                .next()
                .unwrap_or("")
                .to_owned(),
            headers,
            content_length: None,
            chunked: false,
            peer: self.peer,
        };
        if let Some(te) = head.header("transfer-encoding") {
            if !te.eq_ignore_ascii_case(b"chunked") {
                return Err(ReadError::Answer(
                    501,
                    "only the chunked transfer encoding is supported".to_owned(),
                ));
            }
            head.chunked = true;
        } else {
            let lengths: Vec<&[u8]> = head
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.as_slice())
                .collect();
            match lengths.as_slice() {
                [] => {}
                [one] => {
                    let n = std::str::from_utf8(one)
                        .ok()
                        .and_then(|s| s.trim().parse::<usize>().ok())
                        .ok_or_else(|| ReadError::Answer(400, "bad Content-Length".to_owned()))?;
                    head.content_length = Some(n);
                }
                _ => {
                    return Err(ReadError::Answer(
                        400,
                        "more than one Content-Length".to_owned(),
                    ))
                }
            }
        }
        let connection = head.header("connection").map(|v| v.to_ascii_lowercase());
        let keep_alive = match version {
            0 => connection.as_deref() == Some(b"keep-alive"),
            _ => connection.as_deref() != Some(b"close"),
        };
        Ok((head, keep_alive))
    }

    fn read_body(&mut self, head: &Head) -> Result<Vec<u8>, ReadError> {
        let limit = self.body_bytes_max;
        let too_large =
            || ReadError::Answer(413, format!("body exceeds the limit of {limit} bytes"));
        let mut body = Vec::new();
        if !head.chunked {
            let n = head.content_length.unwrap_or(0);
            body.resize(n, 0);
            self.reader.read_exact(&mut body)?;
            return Ok(body);
        }
        loop {
            let line = self.read_line()?;
            let size_text = line.split(|&b| b == b';').next().unwrap_or(&[]);
            let size = std::str::from_utf8(size_text)
                .ok()
                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                .ok_or_else(|| ReadError::Answer(400, "bad chunk size".to_owned()))?;
            if size == 0 {
                // Trailers, up to the blank line.
                for _ in 0..HTTP_HEADERS_MAX {
                    if self.read_line()?.is_empty() {
                        return Ok(body);
                    }
                }
                return Err(ReadError::Answer(400, "too many trailers".to_owned()));
            }
            // `size` comes from the client (up to usize::MAX): compare
            // without adding, so no size can overflow past the check.
            if size > limit - body.len() {
                return Err(too_large());
            }
            let start = body.len();
            body.resize(start + size, 0);
            self.reader.read_exact(&mut body[start..])?;
            if !self.read_line()?.is_empty() {
                return Err(ReadError::Answer(
                    400,
                    "chunk not followed by CRLF".to_owned(),
                ));
            }
        }
    }

    /// One CRLF-terminated line of at most 1 KiB, without its ending.
    fn read_line(&mut self) -> Result<Vec<u8>, ReadError> {
        const LINE_MAX: u64 = 1024;
        let mut line = Vec::new();
        (&mut self.reader)
            .take(LINE_MAX + 1)
            .read_until(b'\n', &mut line)?;
        if line.last() != Some(&b'\n') {
            return Err(if line.len() as u64 > LINE_MAX {
                ReadError::Answer(400, "chunk line too long".to_owned())
            } else {
                ReadError::Closed
            });
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(line)
    }

    fn write(&mut self, response: &Response, keep_alive: bool) -> io::Result<()> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
            response.status,
            reason(response.status),
            response.content_type,
            response.body.len(),
            if keep_alive { "keep-alive" } else { "close" }
        )
        .into_bytes();
        for (name, value) in &response.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&response.body);
        let stream = self.stream();
        stream.write_all(&out)?;
        stream.flush()
    }

    /// Answer, then close without resetting the connection: stop writing,
    /// and discard what the client still sends for a short while, so the
    /// answer is not lost to a TCP reset.
    fn answer_and_close(&mut self, response: Response) -> io::Result<()> {
        self.write(&response, false)?;
        let stream = self.stream();
        let _ = stream.shutdown(Shutdown::Write);
        let until = Instant::now() + HTTP_LINGER;
        let mut drained = 0u64;
        let mut buf = [0u8; 16 << 10];
        while drained < HTTP_LINGER_BYTES_MAX {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            stream.set_read_timeout(Some(left))?;
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n as u64,
            }
        }
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

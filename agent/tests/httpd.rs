//! The agent's HTTP/1.1 server with real sockets and raw requests: what
//! libcurl (Falco) and Go's client (Falcosidekick) send — keep-alive,
//! pipelining, chunked bodies, `Expect: 100-continue`, HTTP/1.0 — and what a
//! hostile client sends.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use scbe_agent::control::Stop;
use scbe_agent::httpd::{Handler, Head, Response, Server, Serving};

/// Echoes the body's length; refuses `/refuse` from the head alone.
struct Echo;

impl Handler for Echo {
    fn head(&self, head: &Head) -> Option<Response> {
        (head.path == "/refuse").then(|| Response::error(401, "no"))
    }

    fn body(&self, head: &Head, body: Vec<u8>) -> Response {
        Response::json(
            200,
            &serde_json::json!({"method": head.method, "path": head.path, "len": body.len(), "body": String::from_utf8_lossy(&body)}),
        )
    }
}

struct Running {
    addr: SocketAddr,
    stop: Arc<Stop>,
    serving: Option<Serving>,
}

impl Running {
    fn start(body_limit: usize) -> Running {
        let server = Server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = server.local_addr();
        let stop = Stop::new();
        let serving = server
            .serve("test", 2, body_limit, Arc::new(Echo), Arc::clone(&stop))
            .unwrap();
        Running {
            addr,
            stop,
            serving: Some(serving),
        }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        stream
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.request();
        if let Some(serving) = self.serving.take() {
            serving.join();
        }
    }
}

/// Read one response (head + Content-Length body) from `stream`.
fn read_response(stream: &mut TcpStream) -> (u16, String, String) {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).unwrap(),
            1,
            "closed inside a response head: {:?}",
            String::from_utf8_lossy(&raw)
        );
        raw.push(byte[0]);
    }
    let head = String::from_utf8(raw).unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    (status, head, String::from_utf8(body).unwrap())
}

#[test]
fn keep_alive_and_pipelined_requests() {
    let server = Running::start(1024);
    let mut stream = server.connect();
    // Two requests in one write: both answered, in order, on one connection.
    stream
        .write_all(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcPOST /b?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nde")
        .unwrap();
    let (status, head, body) = read_response(&mut stream);
    assert_eq!(status, 200);
    assert!(head.contains("Connection: keep-alive"), "{head}");
    assert!(
        body.contains("\"path\":\"/a\"") && body.contains("\"body\":\"abc\""),
        "{body}"
    );
    let (_, _, body) = read_response(&mut stream);
    assert!(
        body.contains("\"path\":\"/b\"") && body.contains("\"body\":\"de\""),
        "{body}"
    );
    // And a third, later, on the same connection.
    stream
        .write_all(b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (status, head, _) = read_response(&mut stream);
    assert_eq!(status, 200);
    assert!(head.contains("Connection: close"));
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "closed after Connection: close");
}

#[test]
fn chunked_bodies_and_expect_continue() {
    let server = Running::start(1024);
    let mut stream = server.connect();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nX-Trailer: y\r\n\r\n")
        .unwrap();
    let (status, _, body) = read_response(&mut stream);
    assert_eq!(status, 200);
    assert!(body.contains("\"body\":\"abcdefg\""), "{body}");

    stream
        .write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"hello").unwrap();
    let (status, _, body) = read_response(&mut stream);
    assert_eq!(status, 200);
    assert!(body.contains("\"len\":5"), "{body}");
}

#[test]
fn limits_are_checked_before_buffering() {
    let server = Running::start(16);
    // Declared too large: 413 at once, without sending a byte of the body.
    let mut stream = server.connect();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n")
        .unwrap();
    let (status, head, body) = read_response(&mut stream);
    assert_eq!(status, 413);
    assert!(head.contains("Connection: close"));
    assert!(body.contains("limit of 16 bytes"), "{body}");

    // Chunked past the limit: refused as soon as it passes.
    let mut stream = server.connect();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n1\r\nX\r\n")
        .unwrap();
    assert_eq!(read_response(&mut stream).0, 413);

    // A chunk size that would overflow a length computation: 413, and the
    // serving threads survive it.
    for _ in 0..3 {
        let mut stream = server.connect();
        stream
            .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nX\r\nffffffffffffffff\r\nx\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut stream).0, 413);
    }

    // A head without end is cut at its limit.
    let mut stream = server.connect();
    let mut head = b"GET / HTTP/1.1\r\n".to_vec();
    head.extend(std::iter::repeat_n(b'a', 20 << 10));
    let _ = stream.write_all(&head);
    assert_eq!(read_response(&mut stream).0, 431);

    // Garbage and conflicting lengths are 400; other encodings 501.
    for (request, expected) in [
        (&b"NOT HTTP AT ALL\r\n\r\n"[..], 400),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            400,
        ),
        (b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    ] {
        let mut stream = server.connect();
        stream.write_all(request).unwrap();
        assert_eq!(
            read_response(&mut stream).0,
            expected,
            "{:?}",
            String::from_utf8_lossy(request)
        );
    }
}

#[test]
fn head_answers_skip_the_body_and_close() {
    let server = Running::start(1024);
    let mut stream = server.connect();
    stream
        .write_all(b"POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody")
        .unwrap();
    let (status, head, _) = read_response(&mut stream);
    assert_eq!(status, 401);
    assert!(
        head.contains("Connection: close"),
        "the unread body ends the connection"
    );
}

#[test]
fn http_1_0_closes_unless_asked_to_keep_alive() {
    let server = Running::start(1024);
    let mut stream = server.connect();
    stream
        .write_all(b"POST / HTTP/1.0\r\nContent-Length: 1\r\n\r\nx")
        .unwrap();
    let (status, head, _) = read_response(&mut stream);
    assert_eq!(status, 200);
    assert!(head.contains("Connection: close"));
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

#[test]
fn stop_ends_idle_keep_alive_connections_and_accepting_threads() {
    let mut server = Running::start(1024);
    let mut stream = server.connect();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut stream).0, 200);
    // The connection is idle and kept alive; stopping must not wait for the
    // 30 s idle timeout.
    server.stop.request();
    server.serving.take().unwrap().join();
    let mut rest = Vec::new();
    assert_eq!(stream.read_to_end(&mut rest).unwrap(), 0);
}

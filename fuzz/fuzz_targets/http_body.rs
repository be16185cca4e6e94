//! The agent's HTTP intake body parser (`split_body`) and its line splitter.
//!
//! Invariants: no panic; a refusal has a message; an accepted body yields at
//! least one event, each a JSON object the gate decides (never an error: a
//! 200 must not turn into an error line); the events are the body's own
//! bytes, in order; and the streaming splitter finds the same lines whatever
//! the chunk boundaries.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use scbe_agent::intake::http::split_body;
use scbe_agent::intake::lines::LineSplitter;
use scbe_core::{Bridge, Gate, LineOutcome, MappingOptions, Timestamp};

fn gate() -> &'static Arc<Gate> {
    static GATE: OnceLock<Arc<Gate>> = OnceLock::new();
    GATE.get_or_init(|| Arc::new(Gate::reference()))
}

fn split(chunks: &mut dyn Iterator<Item = &[u8]>) -> Vec<(Vec<u8>, usize)> {
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

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, body)) = data.split_first() else {
        return;
    };
    match split_body(body) {
        Ok(events) => {
            assert!(!events.is_empty(), "accepted body with no events");
            let mut bridge = Bridge::new(Arc::clone(gate()), MappingOptions::default(), None);
            let mut rest = body;
            for event in &events {
                // Each event is the body's own bytes, in order.
                let at = rest
                    .windows(event.len().max(1))
                    .position(|w| w == event.as_slice())
                    .unwrap_or_else(|| panic!("event not found in order in the body"));
                rest = &rest[at + event.len()..];
                match bridge.decide_line(event, |_| Timestamp::ZERO) {
                    LineOutcome::Decided(_) => {}
                    other => panic!("accepted event is not decided: {other:?}"),
                }
            }
        }
        Err(reason) => assert!(!reason.is_empty(), "refusal without a reason"),
    }

    // Chunking never changes the lines.
    let size = usize::from(chunk % 16) + 1;
    let whole = split(&mut std::iter::once(body));
    let chunked = split(&mut body.chunks(size));
    assert_eq!(whole, chunked, "chunks of {size} bytes split differently");
    for (line, len) in &whole {
        assert_eq!(line.len(), *len, "short input reported a different length");
        assert!(
            !line.contains(&b'\n') && !line.contains(&b'\r'),
            "line contains a newline"
        );
    }
});

//! Every bound the engine enforces, in one place.
//!
//! Hitting a limit is an error value (counted and reported by the caller),
//! never a silent truncation or a crash.

/// Longest accepted input line in bytes (excluding the newline). Longer lines
/// are reported as errors without being parsed.
pub const LINE_BYTES_MAX: usize = 1 << 20;

/// How many characters of a rejected line are echoed in its error record.
pub const ERROR_RAW_CHARS_MAX: usize = 2000;

/// Deepest JSON nesting accepted. CPython's `json.loads` fails near its
/// recursion limit of 1000 frames, minus the caller's own frames.
pub const JSON_DEPTH_MAX: usize = 990;

/// Smallest per-process table the reference allows (`max(1000, N)`).
pub const STATE_ENTRIES_MIN: usize = 1000;

/// Largest per-process table a policy may ask for.
pub const STATE_ENTRIES_MAX: usize = 10_000_000;

/// Most scan patterns (prompt + malware) a policy may define.
pub const SCAN_PATTERNS_MAX: usize = 256;

/// Most sensitive-target patterns a policy may define.
pub const SENSITIVE_TARGETS_MAX: usize = 64;

/// Most parent/child pairs a policy may define.
pub const PARENT_CHILD_PAIRS_MAX: usize = 256;

/// Largest compiled size of one policy regex (bytes), against pathological patterns.
pub const PATTERN_COMPILED_BYTES_MAX: usize = 4 << 20;

const _: () = assert!(ERROR_RAW_CHARS_MAX <= LINE_BYTES_MAX);
const _: () = assert!(STATE_ENTRIES_MIN <= STATE_ENTRIES_MAX);
const _: () = assert!(
    SENSITIVE_TARGETS_MAX <= 64,
    "matches are kept in a u64 bitmask"
);

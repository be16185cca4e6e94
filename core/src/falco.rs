//! Falco JSON (`falco -o json_output=true`) → [`KernelEvent`] (SPEC §1).
//!
//! The wire form is a [`JsonValue`] tree; this module is the one explicit,
//! total conversion into the domain event. Bad input is an error value.

use std::fmt;

use crate::clock::Timestamp;
use crate::event::{KernelEvent, Pid};
use crate::json::{JsonError, JsonValue, Reader};
use crate::limits::LINE_BYTES_MAX;
use crate::pystr::{py_lower, py_str_repr, py_strip};
use crate::pyvalue::{py_repr, to_bool, to_float, to_int_text, to_str};

mod compact;
mod keyorder;

pub use keyorder::KeyOrder;

/// How Falco events become kernel events: the parts of the mapping a policy
/// or the command line may change.
#[derive(Debug, Clone, PartialEq)]
pub struct MappingOptions {
    /// Host used when the event names none (`--host-default`).
    pub host_default: String,
    /// Build network targets from the fields real Falco emits (`fd.cip`,
    /// `fd.cport`, `fd.sip`, `fd.sport`, then `fd.name`). Off in the reference,
    /// which only looks at `sip`/`dip` pairs and so sees half a connection.
    pub real_network_fields: bool,
}

impl Default for MappingOptions {
    fn default() -> Self {
        MappingOptions {
            host_default: "linux-node".to_owned(),
            real_network_fields: false,
        }
    }
}

/// Why a line could not become an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// Over [`LINE_BYTES_MAX`]; not parsed.
    TooLong { bytes: usize },
    /// Not valid UTF-8 (at this byte offset).
    InvalidUtf8 { offset: usize },
    /// Not JSON.
    Json(JsonError),
    /// Valid JSON, but not an object.
    NotAnObject,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::TooLong { bytes } => write!(
                f,
                "line of {bytes} bytes exceeds the limit of {LINE_BYTES_MAX} bytes"
            ),
            LineError::InvalidUtf8 { offset } => {
                write!(f, "invalid UTF-8 at byte {offset}")
            }
            LineError::Json(err) => write!(f, "invalid JSON: {err}"),
            LineError::NotAnObject => f.write_str("falco line must be a JSON object"),
        }
    }
}

impl std::error::Error for LineError {}

/// What a raw line is, once stripped as Python's `str.strip()` does.
#[derive(Debug)]
pub enum RawLine<'a> {
    /// Blank after stripping: skipped and not counted (SPEC §8).
    Blank,
    Text(&'a str),
}

/// Validate and strip one raw input line (without its `\n`).
pub fn classify_line(raw: &[u8]) -> Result<RawLine<'_>, LineError> {
    if raw.len() > LINE_BYTES_MAX {
        return Err(LineError::TooLong { bytes: raw.len() });
    }
    // A SIMD check first (a line is mostly ASCII); the standard library's
    // only to say where an invalid line goes wrong.
    let text = simdutf8::basic::from_utf8(raw).or_else(|_| {
        std::str::from_utf8(raw).map_err(|e| LineError::InvalidUtf8 {
            offset: e.valid_up_to(),
        })
    })?;
    let stripped = py_strip(text);
    if stripped.is_empty() {
        Ok(RawLine::Blank)
    } else {
        Ok(RawLine::Text(stripped))
    }
}

/// The first `max_chars` characters of a raw line, for error reports (invalid
/// UTF-8 shown as U+FFFD).
pub fn raw_prefix(raw: &[u8], max_chars: usize) -> String {
    let cut = raw.len().min(max_chars.saturating_mul(4));
    String::from_utf8_lossy(&raw[..cut])
        .chars()
        .take(max_chars)
        .collect()
}

/// Parse a stripped, non-blank line into a kernel event.
pub fn parse_event(line: &str, options: &MappingOptions) -> Result<KernelEvent, LineError> {
    let doc = FalcoDoc::read(line)?;
    Ok(map_event(&doc, options))
}

/// Every `output_fields` key the mapping reads. One pass over the members
/// files each known key into its slot (a later duplicate overwrites an
/// earlier one, as Python's dict keeps the last), so lookups are O(1).
const KNOWN_FIELDS: &[&str] = &[
    "evt.type",
    "event.type",
    "host.name",
    "k8s.node.name",
    "proc.pid",
    "process.pid",
    "evt.pid",
    "proc.name",
    "process.name",
    "evt.arg.procname",
    "proc.pname",
    "process.parent.name",
    "proc.aname[1]",
    "proc.cmdline",
    "process.command_line",
    "evt.arg.cmdline",
    "fd.name",
    "proc.exepath",
    "evt.arg.filename",
    "evt.arg.path",
    "scbe.signer_trusted",
    "proc.is_signed",
    "file.trusted",
    "file.sha256",
    "proc.hash.sha256",
    "scbe.sha256",
    "scbe.geometry_norm",
    "container.id",
    "container.image.id",
    "container.name",
    "k8s.pod.name",
    "k8s.ns.name",
    "fd.sip",
    "evt.arg.sip",
    "fd.sport",
    "evt.arg.sport",
    "fd.dip",
    "evt.arg.dip",
    "fd.dport",
    "evt.arg.dport",
    "fd.cip",
    "fd.lip",
    "fd.rip",
    "fd.cport",
    "fd.lport",
    "fd.rport",
    "evt.time",
];

/// The slot of `key` in [`KNOWN_FIELDS`], at compile time.
const fn field_id(key: &str) -> usize {
    slot_of(KNOWN_FIELDS, key)
}

/// The slot of `key` in [`TOP_KEYS`], at compile time.
const fn top_id(key: &str) -> usize {
    slot_of(TOP_KEYS, key)
}

/// The index of `key` in `names`, at compile time.
const fn slot_of(names: &[&str], key: &str) -> usize {
    let key = key.as_bytes();
    let mut i = 0;
    while i < names.len() {
        let known = names[i].as_bytes();
        if known.len() == key.len() {
            let mut j = 0;
            while j < key.len() && known[j] == key[j] {
                j += 1;
            }
            if j == key.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("the key must be listed")
}

/// `top_key!("a")`: the slot of a top-level key, resolved at compile time.
macro_rules! top_key {
    ($key:literal) => {
        const { top_id($key) }
    };
}

/// `keys!("a", "b")`: the slots of field names, resolved at compile time.
macro_rules! keys {
    ($($key:literal),+ $(,)?) => {
        &const { [$(field_id($key)),+] }
    };
}

/// A set of member names, looked up by length and two 8-byte words (the
/// first and last eight bytes) instead of string comparisons: a Falco line
/// has dozens of members, and most of reading one used to be `memcmp`.
struct NameIndex {
    /// `by_len[n]`: (slot, head word, tail word, name) of the names of `n` bytes.
    by_len: Vec<Vec<(usize, u64, u64, &'static str)>>,
}

impl NameIndex {
    fn new(names: &[&'static str]) -> NameIndex {
        let longest = names.iter().map(|k| k.len()).max().unwrap_or(0);
        let mut by_len = vec![Vec::new(); longest + 1];
        for (slot, name) in names.iter().enumerate() {
            let (head, tail) = name_words(name.as_bytes());
            by_len[name.len()].push((slot, head, tail, *name));
        }
        NameIndex { by_len }
    }

    #[inline]
    fn slot(&self, name: &[u8]) -> Option<usize> {
        let candidates = self.by_len.get(name.len())?;
        let (head, tail) = name_words(name);
        candidates
            .iter()
            .find(|(_, h, t, known)| {
                // The two words cover names of up to 16 bytes; longer ones
                // also compare the middle.
                *h == head && *t == tail && (name.len() <= 16 || known.as_bytes() == name)
            })
            .map(|(slot, ..)| *slot)
    }
}

/// The first and the last (up to) eight bytes; with the length, they are the
/// whole name when it has at most sixteen bytes. Short names are read with
/// overlapping loads rather than copied.
#[inline(always)]
fn name_words(bytes: &[u8]) -> (u64, u64) {
    let n = bytes.len();
    if n >= 8 {
        let word = |eight: &[u8]| u64::from_le_bytes(eight.try_into().expect("8 bytes"));
        return (word(&bytes[..8]), word(&bytes[n - 8..]));
    }
    let head = if n >= 4 {
        let four = |at: usize| {
            u64::from(u32::from_le_bytes(
                bytes[at..at + 4].try_into().expect("4 bytes"),
            ))
        };
        four(0) | four(n - 4) << 32
    } else if n > 0 {
        u64::from(bytes[0]) | u64::from(bytes[n / 2]) << 8 | u64::from(bytes[n - 1]) << 16
    } else {
        0
    };
    (head, head)
}

fn top_index() -> &'static NameIndex {
    static INDEX: std::sync::OnceLock<NameIndex> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| NameIndex::new(TOP_KEYS))
}

fn field_index() -> &'static NameIndex {
    static INDEX: std::sync::OnceLock<NameIndex> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| NameIndex::new(KNOWN_FIELDS))
}

/// The top-level keys the mapping reads (`E.x` in SPEC §1).
const TOP_KEYS: &[&str] = &[
    "hostname",
    "output",
    "priority",
    "rule",
    "time",
    "evt_type",
    "pid",
    "process_name",
    "parent_process",
    "command_line",
    "target",
    "signer_trusted",
    "hash_sha256",
    "geometry_norm",
];

/// A known member's value as read, without decoding it: a string without
/// escapes is kept as its contents, anything else as its (validated) JSON
/// source, decoded only when the mapping asks. Reading a line therefore
/// builds nothing and frees nothing; most of it is one validating pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawValue<'a> {
    /// A JSON string without escapes: its contents.
    Text(&'a str),
    /// Any other value: its JSON text.
    Json(&'a str),
}

impl<'a> RawValue<'a> {
    /// The decoded value.
    pub fn value(self) -> JsonValue<'a> {
        match self {
            RawValue::Text(text) => JsonValue::Str(std::borrow::Cow::Borrowed(text)),
            // Validated while reading the line, so this cannot fail; `null`
            // keeps the mapping total even if it did.
            RawValue::Json(json) => crate::json::parse(json).unwrap_or(JsonValue::Null),
        }
    }

    /// `str(v).strip()` appended to `out`.
    fn push_str_to(self, out: &mut String) {
        let text = match self {
            RawValue::Text(text) => py_strip(text),
            // `str()` of a plain integer (a port, say) is its literal.
            RawValue::Json(digits) if small_decimal(digits) => digits,
            RawValue::Json(_) => {
                out.push_str(&to_str(&self.value()));
                return;
            }
        };
        crate::pystr::make_room(out, text.len());
        out.push_str(text);
    }
}

/// Where a known member's value lies in the line, in eight bytes, so that a
/// document is small to set up and to move: `start` 0 means absent (no value
/// starts where the line's `{` is), and the top bit of `len` marks JSON text
/// (a [`RawValue::Json`]) rather than string contents.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Span {
    start: u32,
    len: u32,
}

const JSON_BIT: u32 = 1 << 31;

/// Whether every position in `text` fits a [`Span`] (lines are far
/// shorter; a longer text is an error, not a document).
fn spans_fit(text: &str) -> bool {
    text.len() <= (JSON_BIT - 1) as usize
}

impl Span {
    const ABSENT: Span = Span { start: 0, len: 0 };

    /// `len` fits in 31 bits: lines are checked to be shorter than 2 GiB.
    fn new(start: usize, end: usize, json: bool) -> Span {
        Span {
            start: start as u32,
            len: (end - start) as u32 | if json { JSON_BIT } else { 0 },
        }
    }

    fn value(self, text: &str) -> Option<RawValue<'_>> {
        if self.start == 0 {
            return None;
        }
        let start = self.start as usize;
        let end = start + (self.len & !JSON_BIT) as usize;
        // Spans are made at character boundaries of this very text, so the
        // slice cannot fail; `None` keeps this total all the same.
        let value = text.get(start..end)?;
        Some(if self.len & JSON_BIT != 0 {
            RawValue::Json(value)
        } else {
            RawValue::Text(value)
        })
    }
}

/// A Falco line as the gate needs it: the known top-level members and the
/// known `output_fields` members, located; everything else only validated.
/// A later duplicate key replaces an earlier one, as Python's dict does.
#[derive(Debug, PartialEq)]
pub struct FalcoDoc<'a> {
    text: &'a str,
    top: [Span; TOP_KEYS.len()],
    fields: [Span; KNOWN_FIELDS.len()],
}

impl<'a> FalcoDoc<'a> {
    /// Read one line: valid JSON (Python's `json.loads` acceptance), and an
    /// object, or an error saying which.
    pub fn read(text: &'a str) -> Result<FalcoDoc<'a>, LineError> {
        FalcoDoc::read_with(text, &mut KeyOrder::disabled())
    }

    /// [`Self::read`], guessing member names from `order` and teaching it
    /// (see [`KeyOrder`]): the same result on every line, whatever `order`
    /// learned before.
    pub fn read_with(text: &'a str, order: &mut KeyOrder) -> Result<FalcoDoc<'a>, LineError> {
        let mut doc = FalcoDoc::empty(text);
        doc.fill(order)?;
        Ok(doc)
    }

    /// [`Self::read`] in place: locate the members of the text of this
    /// document, fresh from [`Self::empty`], with `order`'s guesses of
    /// member names (see [`KeyOrder`]). A batch's documents are filled where
    /// they lie: each is half a kilobyte, and returning one by value copies
    /// it at every step.
    pub(crate) fn fill(&mut self, order: &mut KeyOrder) -> Result<(), LineError> {
        // Falco's own compact lines take the fast path; anything else (and
        // every error) is the general reader's.
        if compact::fill(self, order) {
            return Ok(());
        }
        *self = FalcoDoc::read_general(self.text)?;
        Ok(())
    }

    /// No member located yet: [`Self::fill`] locates them (and rejects a
    /// text too long for its spans).
    pub(crate) fn empty(text: &'a str) -> FalcoDoc<'a> {
        FalcoDoc {
            text,
            top: [Span::ABSENT; TOP_KEYS.len()],
            fields: [Span::ABSENT; KNOWN_FIELDS.len()],
        }
    }

    /// [`Self::read`] by the general reader alone, without the fast path
    /// for Falco-shaped lines: the reference that path is tested (and
    /// fuzzed) against. Same result as [`Self::read`] on every line.
    pub fn read_general(text: &'a str) -> Result<FalcoDoc<'a>, LineError> {
        if !spans_fit(text) {
            return Err(LineError::TooLong { bytes: text.len() });
        }
        let mut doc = FalcoDoc::empty(text);
        let mut reader = Reader::new(text);
        reader.skip_ws();
        if reader.peek() != Some(b'{') {
            reader.skip_value().map_err(LineError::Json)?;
            reader.skip_ws();
            if !reader.at_end() {
                return Err(LineError::Json(
                    reader.error("extra data after the JSON value"),
                ));
            }
            return Err(LineError::NotAnObject);
        }
        doc.read_object(&mut reader, 0).map_err(LineError::Json)?;
        reader.skip_ws();
        if !reader.at_end() {
            return Err(LineError::Json(
                reader.error("extra data after the JSON value"),
            ));
        }
        Ok(doc)
    }

    /// Members of the object at the reader (`level` 0: the event; 1: its
    /// `output_fields`).
    fn read_object(&mut self, reader: &mut Reader<'a>, level: usize) -> Result<(), JsonError> {
        reader.pos += 1;
        reader.depth_base = level + 1;
        reader.skip_ws();
        if reader.peek() == Some(b'}') {
            reader.pos += 1;
            return Ok(());
        }
        loop {
            let decoded;
            let key: &[u8] = match reader.plain_key() {
                Some(key) => key,
                None => {
                    decoded = reader.object_key()?;
                    decoded.as_bytes()
                }
            };
            if level == 0 && key == b"output_fields" {
                self.fields = [Span::ABSENT; KNOWN_FIELDS.len()];
                if reader.peek() == Some(b'{') {
                    self.read_object(reader, 1)?;
                    reader.depth_base = 1;
                } else {
                    reader.skip_value()?;
                }
            } else {
                let slot = if level == 0 {
                    top_index().slot(key).map(|i| &mut self.top[i])
                } else {
                    field_index().slot(key).map(|i| &mut self.fields[i])
                };
                match slot {
                    Some(slot) => *slot = read_raw(reader)?,
                    // Unknown members are only validated; most are plain
                    // strings.
                    None => {
                        if reader.plain_string().is_none() {
                            reader.skip_value()?;
                        }
                    }
                }
            }
            reader.skip_ws();
            match reader.peek() {
                Some(b',') => {
                    reader.pos += 1;
                    reader.skip_ws();
                }
                Some(b'}') => {
                    reader.pos += 1;
                    return Ok(());
                }
                _ => return Err(reader.error("expecting ',' delimiter")),
            }
        }
    }

    /// `E.get(key)`, for the key in slot `id` (see [`top_key!`]).
    fn top(&self, id: usize) -> Option<RawValue<'a>> {
        self.top[id].value(self.text)
    }

    fn field(&self, id: usize) -> Option<RawValue<'a>> {
        self.fields[id].value(self.text)
    }
}

/// Validate the value at the reader and move past it, keeping where it was.
fn read_raw(reader: &mut Reader<'_>) -> Result<Span, JsonError> {
    let start = reader.pos;
    if reader.plain_string().is_some() {
        // The contents, between the quotes.
        return Ok(Span::new(start + 1, reader.pos - 1, false));
    }
    reader.skip_value()?;
    Ok(Span::new(start, reader.pos, true))
}

/// The slot of a top-level member name, if the mapping reads it.
#[cfg(test)]
fn top_slot(key: &str) -> Option<usize> {
    top_index().slot(key.as_bytes())
}

/// The slot of an `output_fields` member name, if the mapping reads it.
#[cfg(test)]
fn field_slot(key: &str) -> Option<usize> {
    field_index().slot(key.as_bytes())
}

/// `pick(F, keys…)`: the first present value that is neither `null` nor `""`.
fn pick<'a>(fields: &FalcoDoc<'a>, keys: &[usize]) -> Option<RawValue<'a>> {
    // Decided on the located spans; only the value picked is sliced out.
    let text = fields.text.as_bytes();
    let span = keys.iter().map(|&key| fields.fields[key]).find(|span| {
        let start = span.start as usize;
        // Only a 4-byte JSON value can be `null`: checked first, so other
        // values skip the comparison.
        let null = span.len == JSON_BIT | 4 && text.get(start..start + 4) == Some(b"null");
        span.start != 0 && span.len & !JSON_BIT != 0 && !null
    })?;
    span.value(fields.text)
}

const EMPTY_STR: RawValue<'static> = RawValue::Text("");
const NULL: RawValue<'static> = RawValue::Json("null");
const FALSE: RawValue<'static> = RawValue::Json("false");
const ZERO: RawValue<'static> = RawValue::Json("0");
const ZERO_FLOAT: RawValue<'static> = RawValue::Json("0.0");
const UNKNOWN: RawValue<'static> = RawValue::Text("unknown");

/// Map a read Falco object into a kernel event (SPEC §1).
pub fn map_event(doc: &FalcoDoc<'_>, options: &MappingOptions) -> KernelEvent {
    let mut event = KernelEvent::default();
    map_event_into(doc, options, &mut event);
    event
}

/// [`map_event`] into an existing event, every field replaced: its strings
/// are cleared and refilled, so a thread that recycles its spent events
/// (see [`crate::membrane::ScanScratch::recycle`]) allocates none for them.
pub fn map_event_into(doc: &FalcoDoc<'_>, options: &MappingOptions, event: &mut KernelEvent) {
    let root = doc;
    let fields = doc;
    // `E.x or d`: the top-level value when present (even null), else `d`.
    let top = |id: usize, default: RawValue<'static>| root.top(id).unwrap_or(default);
    let set_field = |out: &mut String, keys: &[usize], default: RawValue<'_>| {
        out.clear();
        pick(fields, keys).unwrap_or(default).push_str_to(out);
    };

    // Read for the operation class and the metadata only, so borrowed when
    // it needs neither stripping nor lowering (the usual `execve`).
    let evt_type_raw = pick(fields, keys!("evt.type", "event.type"))
        .unwrap_or(top(top_key!("evt_type"), EMPTY_STR));
    let evt_type: std::borrow::Cow<'_, str> = match evt_type_raw {
        RawValue::Text(text) if plain_lowercase(text) => std::borrow::Cow::Borrowed(text),
        other => {
            let mut text = String::new();
            other.push_str_to(&mut text);
            lower_in_place(&mut text);
            std::borrow::Cow::Owned(text)
        }
    };
    event.operation.clear();
    event.operation.push_str(operation_class(&evt_type));

    set_field(
        &mut event.host,
        keys!("host.name", "k8s.node.name"),
        root.top(top_key!("hostname")).unwrap_or(NULL),
    );
    if event.host.is_empty() {
        event.host.push_str(&options.host_default);
    }

    event.pid = match pick(fields, keys!("proc.pid", "process.pid", "evt.pid"))
        .unwrap_or(top(top_key!("pid"), ZERO))
    {
        // The common case: a plain decimal that fits.
        RawValue::Json(digits) if small_decimal(digits) => {
            digits.parse::<i64>().map(Pid::Small).unwrap_or(Pid::ZERO)
        }
        other => to_int_text(&other.value())
            .map(Pid::from_canonical)
            .unwrap_or(Pid::ZERO),
    };

    set_field(
        &mut event.process_name,
        keys!("proc.name", "process.name", "evt.arg.procname"),
        top(top_key!("process_name"), UNKNOWN),
    );
    lower_in_place(&mut event.process_name);
    if event.process_name.is_empty() {
        event.process_name.push_str("unknown");
    }
    set_field(
        &mut event.parent_process,
        keys!("proc.pname", "process.parent.name", "proc.aname[1]"),
        top(top_key!("parent_process"), EMPTY_STR),
    );
    lower_in_place(&mut event.parent_process);
    set_field(
        &mut event.command_line,
        keys!("proc.cmdline", "process.command_line", "evt.arg.cmdline"),
        top(top_key!("command_line"), EMPTY_STR),
    );
    if event.operation == "network_connect" {
        network_target_into(fields, options.real_network_fields, &mut event.target);
    } else {
        set_field(
            &mut event.target,
            keys!(
                "fd.name",
                "proc.exepath",
                "evt.arg.filename",
                "evt.arg.path"
            ),
            top(top_key!("target"), EMPTY_STR),
        );
    }
    event.signer_trusted = match pick(
        fields,
        keys!("scbe.signer_trusted", "proc.is_signed", "file.trusted"),
    )
    .unwrap_or(top(top_key!("signer_trusted"), FALSE))
    {
        RawValue::Json("true") => true,
        RawValue::Json("false") => false,
        other => to_bool(&other.value(), false),
    };
    let mut hash = event.hash_sha256.take().unwrap_or_default();
    set_field(
        &mut hash,
        keys!("file.sha256", "proc.hash.sha256", "scbe.sha256"),
        top(top_key!("hash_sha256"), EMPTY_STR),
    );
    event.hash_sha256 = (!hash.is_empty()).then_some(hash);
    event.geometry_norm = match pick(fields, keys!("scbe.geometry_norm"))
        .unwrap_or(top(top_key!("geometry_norm"), ZERO_FLOAT))
    {
        // A plain unsigned JSON number (no sign, so never `-0`): no need to
        // build the value first.
        RawValue::Json(number) if number.bytes().all(|b| b.is_ascii_digit() || b == b'.') => {
            number.parse().unwrap_or(0.0)
        }
        other => to_float(&other.value(), 0.0),
    };

    metadata_repr_into(root, fields, &evt_type, &mut event.metadata_repr);
    event.time = event_time(root, fields);
}

/// Visible ASCII with no uppercase letter: what `str(v).strip().lower()`
/// leaves as it is.
fn plain_lowercase(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| (b'!'..=b'~').contains(&b) && !b.is_ascii_uppercase())
}

/// A JSON integer literal with no sign trouble and at most 18 digits: it
/// parses as an `i64` and is already canonical (`-0` is not).
fn small_decimal(literal: &str) -> bool {
    let digits = literal.strip_prefix('-').unwrap_or(literal);
    !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && literal != "-0"
}

/// Python's `lower()` in place, leaving the string as it is when it is
/// already lowercase ASCII (the usual process and event names).
fn lower_in_place(text: &mut String) {
    if !text
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
    {
        *text = py_lower(text);
    }
}

/// evt_type → operation class (SPEC §1).
pub fn operation_for(evt_type: &str) -> String {
    operation_class(evt_type).to_owned()
}

/// [`operation_for`], borrowed.
fn operation_class(evt_type: &str) -> &str {
    match evt_type {
        "execve" | "execveat" => "exec",
        "open" | "openat" | "openat2" => "open",
        "write" | "writev" | "pwrite64" => "write",
        "unlink" | "unlinkat" | "rmdir" => "delete",
        "rename" | "renameat" | "renameat2" => "rename",
        "connect" | "sendto" | "accept" | "accept4" => "network_connect",
        "init_module" | "finit_module" | "delete_module" => "module_load",
        "ptrace" | "process_vm_writev" => "process_inject",
        "" => "open",
        other => other,
    }
}

/// The network target (SPEC §1) into `out`, replacing what it held.
fn network_target_into(fields: &FalcoDoc<'_>, real_fields: bool, out: &mut String) {
    out.clear();
    // `str(pick(F, keys…)).strip()` appended; its length.
    let push = |out: &mut String, keys: &[usize]| -> usize {
        let before = out.len();
        if let Some(value) = pick(fields, keys) {
            value.push_str_to(out);
        }
        out.len() - before
    };
    // `ip:port`, or `ip` when the port is empty; the ip's length.
    let endpoint = |out: &mut String, ip: &[usize], port: &[usize]| -> usize {
        let ip_len = push(out, ip);
        out.push(':');
        if push(out, port) == 0 {
            out.pop();
        }
        ip_len
    };
    let (src_ip, src_port, dst_ip, dst_port): (&[usize], &[usize], &[usize], &[usize]) =
        if real_fields {
            // Real Falco: client `fd.cip:fd.cport`, server `fd.sip:fd.sport`;
            // when the addresses are absent, `fd.name` already reads
            // `cip:cport->sip:sport`.
            (
                keys!("fd.cip", "fd.lip"),
                keys!("fd.cport", "fd.lport"),
                keys!("fd.sip", "fd.rip"),
                keys!("fd.sport", "fd.rport"),
            )
        } else {
            (
                keys!("fd.sip", "evt.arg.sip"),
                keys!("fd.sport", "evt.arg.sport"),
                keys!("fd.dip", "evt.arg.dip"),
                keys!("fd.dport", "evt.arg.dport"),
            )
        };
    let src_ip_len = endpoint(out, src_ip, src_port);
    out.push_str("->");
    let dst_ip_len = endpoint(out, dst_ip, dst_port);
    if src_ip_len == 0 && dst_ip_len == 0 {
        out.clear();
        if real_fields {
            push(out, keys!("fd.name"));
        }
        return;
    }
    strip_arrows(out);
}

/// `text.strip("->")` in place: Python's `strip("->")` removes every
/// leading and trailing '-' and '>', so an empty end leaves no arrow.
fn strip_arrows(text: &mut String) {
    let end = text.trim_end_matches(['-', '>']).len();
    text.truncate(end);
    let start = text.len() - text.trim_start_matches(['-', '>']).len();
    text.drain(..start);
}

/// The metadata dict rendered as the reference's `repr(dict)` (SPEC §2).
fn metadata_repr_into(
    root: &FalcoDoc<'_>,
    fields: &FalcoDoc<'_>,
    evt_type: &str,
    out: &mut String,
) {
    let top = |id: usize| root.top(id).unwrap_or(NULL);
    let picked = |keys: &[usize]| pick(fields, keys).unwrap_or(EMPTY_STR);
    let evt_type_value = RawValue::Text(evt_type);
    // Each value with the text before it: the `{` or `, ` and the quoted key
    // (written as one piece rather than four).
    let entries: [(&str, RawValue<'_>); 8] = [
        ("{'rule': ", top(top_key!("rule"))),
        (", 'priority': ", top(top_key!("priority"))),
        (", 'output': ", top(top_key!("output"))),
        (", 'evt_type': ", evt_type_value),
        (
            ", 'container_id': ",
            picked(keys!("container.id", "container.image.id")),
        ),
        (", 'container_name': ", picked(keys!("container.name"))),
        (", 'k8s_pod': ", picked(keys!("k8s.pod.name"))),
        (", 'k8s_ns': ", picked(keys!("k8s.ns.name"))),
    ];
    // Room for every entry as it is, plus quotes, so the text is written
    // without regrowing.
    let estimate: usize = entries
        .iter()
        .map(|(prefix, value)| match value {
            RawValue::Text(text) | RawValue::Json(text) => prefix.len() + text.len() + 4,
        })
        .sum();
    out.clear();
    crate::pystr::make_room(out, estimate + 16);
    for (prefix, value) in &entries {
        out.push_str(prefix);
        match value {
            RawValue::Text(text) => py_str_repr(text, out),
            RawValue::Json(_) => py_repr(&value.value(), out),
        }
    }
    out.push('}');
}

/// The event's own time: `output_fields["evt.time"]` (integer ns), else the
/// top-level RFC 3339 `time`. Replays use it as their clock.
fn event_time(root: &FalcoDoc<'_>, fields: &FalcoDoc<'_>) -> Option<Timestamp> {
    // A JSON integer literal that fits an `i64` (nanoseconds since the epoch
    // have 19 digits): `str::parse` reads it as Python's `int` does. Floats,
    // strings and bigger integers fall through to `time`.
    if let Some(RawValue::Json(ns)) = fields.field(const { field_id("evt.time") }) {
        if let Ok(ns) = ns.parse::<i64>() {
            return Some(Timestamp::from_nanos(ns));
        }
    }
    match root.top(top_key!("time")).map(RawValue::value) {
        Some(JsonValue::Str(text)) => Timestamp::parse_rfc3339(&text),
        Some(JsonValue::Int(ns)) => ns.parse::<i64>().ok().map(Timestamp::from_nanos),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(line: &str) -> KernelEvent {
        parse_event(line, &MappingOptions::default()).unwrap()
    }

    #[test]
    fn mapping_table() {
        let e = event(
            r#"{"hostname":"h1","output_fields":{"evt.type":"EXECVE","proc.pid":"12.0","proc.name":"Bash","proc.pname":"Python3","proc.cmdline":"  ls  ","fd.name":"/etc/shadow","scbe.signer_trusted":"yes","file.sha256":"","scbe.geometry_norm":"NaN"},"rule":"r"}"#,
        );
        assert_eq!(e.host, "h1");
        assert_eq!(e.pid, Pid::ZERO, "\"12.0\" pid is 0");
        assert_eq!(e.process_name, "bash");
        assert_eq!(e.parent_process, "python3");
        assert_eq!(e.command_line, "ls");
        assert_eq!(e.operation, "exec");
        assert_eq!(e.target, "/etc/shadow");
        assert!(e.signer_trusted, "\"yes\" signer is trusted");
        assert_eq!(e.hash_sha256, None);
        assert!(e.geometry_norm.is_nan());
    }

    #[test]
    fn defaults_and_fallbacks() {
        let e = event(r#"{"output_fields":null,"pid":7,"process_name":"","target":"/x"}"#);
        assert_eq!(e.host, "linux-node");
        assert_eq!(e.pid.to_string(), "7");
        assert_eq!(e.process_name, "unknown");
        assert_eq!(e.operation, "open");
        assert_eq!(e.target, "/x");
        let e = event(r#"{"hostname":null,"output_fields":{"host.name":"  "}}"#);
        assert_eq!(e.host, "linux-node");
    }

    #[test]
    fn network_targets_strip_arrows() {
        let cases = [
            (
                r#"{"fd.sip":"10.0.0.1","fd.sport":80,"fd.dip":"10.0.0.2"}"#,
                "10.0.0.1:80->10.0.0.2",
            ),
            (r#"{"fd.dip":"10.0.0.2","fd.dport":443}"#, "10.0.0.2:443"),
            (r#"{"fd.sip":"10.0.0.1"}"#, "10.0.0.1"),
            (r#"{"fd.name":"1.2.3.4:5->6.7.8.9:10"}"#, ""),
        ];
        for (fields, expected) in cases {
            let line = format!(
                r#"{{"output_fields":{{"evt.type":"connect",{}}}}}"#,
                &fields[1..fields.len() - 1]
            );
            assert_eq!(event(&line).target, expected, "{fields}");
        }
    }

    #[test]
    fn real_network_fields_see_both_ends() {
        let options = MappingOptions {
            real_network_fields: true,
            ..MappingOptions::default()
        };
        let line = r#"{"output_fields":{"evt.type":"connect","fd.cip":"10.0.0.1","fd.cport":5555,"fd.sip":"1.1.1.1","fd.sport":443}}"#;
        assert_eq!(
            parse_event(line, &options).unwrap().target,
            "10.0.0.1:5555->1.1.1.1:443"
        );
        let line =
            r#"{"output_fields":{"evt.type":"connect","fd.name":"10.0.0.1:5555->1.1.1.1:443"}}"#;
        assert_eq!(
            parse_event(line, &options).unwrap().target,
            "10.0.0.1:5555->1.1.1.1:443"
        );
    }

    /// Mapping into a spent event replaces every field: each sample mapped
    /// over each other one equals the sample mapped fresh, in both mapping
    /// modes.
    #[test]
    fn mapping_into_a_spent_event_leaves_nothing_behind() {
        let samples = [
            r#"{"hostname":"h1","output_fields":{"evt.type":"EXECVE","proc.pid":"12.0","proc.name":"Bash","proc.pname":"Python3","proc.cmdline":"  ls  ","fd.name":"/etc/shadow","scbe.signer_trusted":"yes","file.sha256":"","scbe.geometry_norm":" 0.25 ","evt.time":1741593600012754329},"rule":"r","output":"a\nb"}"#,
            r#"{"output_fields":{"evt.type":"connect","fd.cip":"10.0.0.1","fd.cport":5555,"fd.sip":"1.1.1.1","fd.sport":443,"fd.dip":"8.8.8.8","fd.dport":53,"file.sha256":"abc"}}"#,
            r#"{"output_fields":{"evt.type":"connect","fd.name":"10.0.0.1:5555->1.1.1.1:443","proc.pid":123456789012345678901234567890}}"#,
            r#"{"output_fields":{"evt.type":"accept","fd.sip":"->x","fd.dport":"->"},"pid":7,"time":"2025-03-10T08:00:01Z"}"#,
            r#"{"process_name":"ΣΥΣ","target":"/boot/x","hash_sha256":"ff","geometry_norm":0.5,"signer_trusted":true,"evt_type":"ptrace","k8s.pod.name":"p"}"#,
            r#"{}"#,
        ];
        for real_network_fields in [false, true] {
            let options = MappingOptions {
                real_network_fields,
                ..MappingOptions::default()
            };
            for before in samples {
                for line in samples {
                    let mut event = parse_event(before, &options).unwrap();
                    map_event_into(&FalcoDoc::read(line).unwrap(), &options, &mut event);
                    assert_eq!(
                        event,
                        parse_event(line, &options).unwrap(),
                        "{line} over {before}"
                    );
                }
            }
        }
    }

    #[test]
    fn name_index_finds_exactly_the_known_names() {
        for (slot, name) in KNOWN_FIELDS.iter().enumerate() {
            assert_eq!(field_slot(name), Some(slot), "{name}");
            // Same length, one byte changed anywhere (the middle of long
            // names is not covered by the two words).
            for i in 0..name.len() {
                let mut near = name.as_bytes().to_vec();
                near[i] ^= 0x01;
                if let Ok(near) = std::str::from_utf8(&near) {
                    let expected = KNOWN_FIELDS.iter().position(|k| *k == near);
                    assert_eq!(field_slot(near), expected, "{near}");
                }
            }
            assert_eq!(field_slot(&name[1..]), None);
            assert_eq!(field_slot(&format!("{name}x")), None);
        }
        for (slot, name) in TOP_KEYS.iter().enumerate() {
            assert_eq!(top_slot(name), Some(slot), "{name}");
        }
        assert_eq!(field_slot(""), None);
        assert_eq!(top_slot("output_fields"), None);
    }

    #[test]
    fn pid_fast_path_agrees_with_python_int() {
        let pid = |raw: &str| {
            event(&format!(r#"{{"output_fields":{{"proc.pid":{raw}}}}}"#))
                .pid
                .to_string()
        };
        assert_eq!(pid("42"), "42");
        assert_eq!(pid("-0"), "0");
        assert_eq!(pid("0"), "0");
        assert_eq!(pid("-17"), "-17");
        assert_eq!(pid("999999999999999999"), "999999999999999999");
        assert_eq!(pid("99999999999999999999999"), "99999999999999999999999");
        assert_eq!(pid("4.0"), "0");
        assert_eq!(pid("\" 42 \""), "42");
        assert_eq!(pid("true"), "0");
    }

    #[test]
    fn escaped_and_plain_strings_map_alike() {
        let plain = event(r#"{"output_fields":{"proc.name":"Bash","proc.cmdline":"a\"b"}}"#);
        let escaped =
            event(r#"{"output_fields":{"proc.name":"\u0042ash","proc.cmdline":"a\u0022b"}}"#);
        assert_eq!(plain, escaped);
        assert_eq!(plain.process_name, "bash");
        assert_eq!(plain.command_line, "a\"b");
    }

    #[test]
    fn metadata_repr_is_a_python_dict() {
        let e = event(
            r#"{"rule":"it's","priority":null,"output":"a\"b","output_fields":{"container.id":0}}"#,
        );
        assert_eq!(
            e.metadata_repr,
            r#"{'rule': "it's", 'priority': None, 'output': 'a"b', 'evt_type': '', 'container_id': 0, 'container_name': '', 'k8s_pod': '', 'k8s_ns': ''}"#
        );
    }

    proptest::proptest! {
        /// The SIMD UTF-8 check accepts exactly what the standard library
        /// accepts, and a rejected line reports the standard offset.
        #[test]
        fn utf8_check_is_the_standard_one(bytes in proptest::collection::vec(proptest::sample::select(vec![
            b'a', b' ', b'{', 0x7f, 0x80, 0xbf, 0xc2, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff,
        ]), 0..80)) {
            let reported = match classify_line(&bytes) {
                Err(LineError::InvalidUtf8 { offset }) => Some(offset),
                _ => None,
            };
            let expected = std::str::from_utf8(&bytes).err().map(|e| e.valid_up_to());
            proptest::prop_assert_eq!(reported, expected);
        }
    }

    #[test]
    fn non_objects_and_bad_lines_are_errors() {
        let options = MappingOptions::default();
        assert_eq!(
            parse_event("[1]", &options).unwrap_err(),
            LineError::NotAnObject
        );
        assert!(matches!(
            parse_event("{", &options),
            Err(LineError::Json(_))
        ));
        assert!(matches!(
            classify_line(b"\xff{}"),
            Err(LineError::InvalidUtf8 { offset: 0 })
        ));
        assert!(matches!(
            classify_line("{}\u{1c}".as_bytes()),
            Ok(RawLine::Text("{}"))
        ));
        assert!(matches!(classify_line(b" \t "), Ok(RawLine::Blank)));
    }
}

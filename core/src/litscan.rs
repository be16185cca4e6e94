//! Necessary literals: one pass over a text tells which of many patterns
//! could match it at all.
//!
//! For each pattern, [`necessary_sets`] derives from its HIR (the very syntax
//! tree the `regex` crate compiles) a few *necessary sets*: sets of literals
//! such that every match of the pattern contains at least one member of each
//! set. [`LiteralFilter`] searches all those literals in one pass (Teddy, or an
//! Aho-Corasick DFA for short texts) and a pattern's regex only needs to run
//! when every one of its sets was seen. A pattern without a usable set always
//! runs, so the filter is exact whatever the policy: it can skip work, never
//! change an answer.
//!
//! Literals are *normalized* by ASCII lowercasing (byte for byte, so lengths
//! and positions are kept), and the haystack the filter searches must be the
//! ASCII lowercase of the text the regex runs on. That makes `(?i)` patterns
//! cheap (`[Ss]` is one literal byte) while staying exact for everything
//! else: non-ASCII members of a class (`ſ`, the Kelvin sign `K`) are kept as
//! their own literals, byte for byte.

use std::collections::BTreeSet;

use aho_corasick::packed;
use regex_syntax::hir::{Class, Hir, HirKind};

/// A set of normalized literals.
type Set = BTreeSet<Vec<u8>>;

/// Largest set of exact strings tracked for a sub-expression.
const EXACT_MAX: usize = 64;
/// Largest class expanded into its members.
const CLASS_MAX: u32 = 16;
/// A necessary set is used only when all its literals are at least this long
/// (shorter ones match almost everywhere and slow the searcher down).
const USE_MIN_LEN: usize = 3;
/// ... and when it has at most this many literals.
const USE_MAX_SET: usize = 16;
/// Necessary sets kept per sub-expression.
const SETS_KEPT: usize = 3;
/// A pattern is filtered on its best set, and also on the second best when
/// the best one's literals are shorter than this (short words are common:
/// `act\s+as\s+root` needs both `root` and `act`).
const STRONG_LEN: usize = 5;
/// Literals per Teddy searcher (its hard limit is 128; past 64 it loses
/// precision).
const TEDDY_CHUNK: usize = 64;

/// What is known of a sub-expression's matches.
#[derive(Debug, Default)]
struct Info {
    /// Every match, normalized, is one of these strings.
    exact: Option<Set>,
    /// Every match, normalized, contains a member of each of these sets (all
    /// usable: see [`usable`]).
    required: Vec<Set>,
}

/// ASCII lowercase, byte for byte.
fn normalize(bytes: &[u8]) -> Vec<u8> {
    bytes.to_ascii_lowercase()
}

fn min_len(set: &Set) -> usize {
    set.iter().map(Vec::len).min().unwrap_or(0)
}

/// Whether a set is worth searching for: short literals match nearly
/// everywhere and an empty one matches always.
fn usable(set: &Set) -> bool {
    !set.is_empty() && set.len() <= USE_MAX_SET && min_len(set) >= USE_MIN_LEN
}

/// Drop members that contain another member: a text containing the longer
/// one contains the shorter, so the set still means the same.
fn minimize(set: Set) -> Set {
    let members: Vec<Vec<u8>> = set.into_iter().collect();
    members
        .iter()
        .filter(|m| {
            !members
                .iter()
                .any(|o| o.len() < m.len() && contains(m.as_slice(), o.as_slice()))
        })
        .cloned()
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Higher is better: longer literals first, then fewer of them.
fn score(set: &Set) -> (usize, std::cmp::Reverse<usize>) {
    (min_len(set).min(16), std::cmp::Reverse(set.len()))
}

/// Whether seeing a member of `a` implies seeing a member of `b` (each
/// member of `a` contains one of `b`): then requiring `b` beside `a` filters
/// nothing more.
fn implies(a: &Set, b: &Set) -> bool {
    a.iter().all(|x| b.iter().any(|y| contains(x, y)))
}

/// Keep the best few usable sets, best first, none implied by a better one.
fn best(mut sets: Vec<Set>) -> Vec<Set> {
    sets.retain(usable);
    sets.sort_by_key(|s| std::cmp::Reverse(score(s)));
    let mut out: Vec<Set> = Vec::new();
    for set in sets {
        if out.len() == SETS_KEPT {
            break;
        }
        if !out.iter().any(|kept| implies(kept, &set)) {
            out.push(set);
        }
    }
    out
}

fn product(a: &Set, b: &Set, max: usize) -> Option<Set> {
    if a.len().saturating_mul(b.len()) > max {
        return None;
    }
    let mut out = Set::new();
    for x in a {
        for y in b {
            let mut s = x.clone();
            s.extend_from_slice(y);
            out.insert(s);
        }
    }
    Some(out)
}

fn class_members(class: &Class) -> Option<Set> {
    let mut out = Set::new();
    match class {
        Class::Unicode(class) => {
            let mut count = 0u32;
            for range in class.ranges() {
                count = count.saturating_add(u32::from(range.end()) - u32::from(range.start()) + 1);
                if count > CLASS_MAX {
                    return None;
                }
            }
            for range in class.ranges() {
                for code in u32::from(range.start())..=u32::from(range.end()) {
                    let c = char::from_u32(code)?;
                    let mut buf = [0u8; 4];
                    out.insert(normalize(c.encode_utf8(&mut buf).as_bytes()));
                }
            }
        }
        Class::Bytes(class) => {
            let mut count = 0u32;
            for range in class.ranges() {
                count += u32::from(range.end()) - u32::from(range.start()) + 1;
                if count > CLASS_MAX || !range.end().is_ascii() {
                    return None;
                }
            }
            for range in class.ranges() {
                for b in range.start()..=range.end() {
                    out.insert(normalize(&[b]));
                }
            }
        }
    }
    Some(out)
}

fn empty_string() -> Set {
    std::iter::once(Vec::new()).collect()
}

fn analyze(hir: &Hir) -> Info {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Info {
            exact: Some(empty_string()),
            required: Vec::new(),
        },
        HirKind::Literal(lit) => Info {
            exact: Some(std::iter::once(normalize(&lit.0)).collect()),
            required: Vec::new(),
        },
        // An empty class matches nothing: no information is still correct.
        HirKind::Class(class) => Info {
            exact: class_members(class).filter(|s| !s.is_empty()),
            required: Vec::new(),
        },
        HirKind::Capture(cap) => analyze(&cap.sub),
        HirKind::Repetition(rep) => {
            if rep.max == Some(0) {
                return Info {
                    exact: Some(empty_string()),
                    required: Vec::new(),
                };
            }
            let sub = analyze(&rep.sub);
            if rep.min == 0 {
                // `x?`: exactly a match of x, or nothing.
                let exact = match (rep.max, sub.exact) {
                    (Some(1), Some(mut e)) if e.len() < EXACT_MAX => {
                        e.insert(Vec::new());
                        Some(e)
                    }
                    _ => None,
                };
                return Info {
                    exact,
                    required: Vec::new(),
                };
            }
            if rep.min == 1 && rep.max == Some(1) {
                return sub;
            }
            // At least one whole match of the sub-expression occurs inside.
            let mut required = sub.required;
            required.extend(sub.exact);
            Info {
                exact: None,
                required: best(required),
            }
        }
        HirKind::Concat(subs) => {
            let mut required = Vec::new();
            // Products of the current run of exact sub-expressions: their
            // concatenation is a contiguous part of every match. `whole`
            // tracks the exact set of the concatenation (while it stays
            // small); `part` is cut whenever it would outgrow a usable set,
            // each finished part being necessary.
            let mut whole: Option<Set> = Some(empty_string());
            let mut part: Option<Set> = None;
            for sub in subs {
                let info = analyze(sub);
                required.extend(info.required);
                match info.exact {
                    Some(e) => {
                        whole = whole.and_then(|w| product(&w, &e, EXACT_MAX));
                        part = Some(match part.take() {
                            None => e,
                            Some(p) => match product(&p, &e, USE_MAX_SET) {
                                Some(joined) => joined,
                                None => {
                                    required.push(p);
                                    e
                                }
                            },
                        });
                    }
                    None => {
                        whole = None;
                        required.extend(part.take());
                    }
                }
            }
            required.extend(part);
            required.extend(whole.clone());
            Info {
                exact: whole,
                required: best(required),
            }
        }
        HirKind::Alternation(subs) => {
            let infos: Vec<Info> = subs.iter().map(analyze).collect();
            let mut exact = Some(Set::new());
            for info in &infos {
                exact = match (exact, &info.exact) {
                    (Some(mut acc), Some(e)) if acc.len() + e.len() <= EXACT_MAX => {
                        acc.extend(e.iter().cloned());
                        Some(acc)
                    }
                    _ => None,
                };
            }
            // Every match is a match of one branch, so it contains a member
            // of that branch's best set: the union is necessary.
            let mut union = Some(Set::new());
            for info in infos {
                let mut candidates = info.required;
                candidates.extend(info.exact);
                union = match (union, best(candidates).into_iter().next()) {
                    (Some(mut acc), Some(set)) => {
                        acc.extend(set);
                        Some(acc)
                    }
                    _ => None,
                };
            }
            Info {
                exact,
                required: union.map(minimize).into_iter().filter(usable).collect(),
            }
        }
    }
}

/// Sets of normalized literals, each necessary for a match of `hir`: every
/// match contains, once ASCII-lowercased, at least one member of each set.
/// Empty when nothing usable is known (the pattern must always run).
pub fn necessary_sets(hir: &Hir) -> Vec<Set> {
    let info = analyze(hir);
    let mut sets = info.required;
    sets.extend(info.exact);
    let mut sets = best(sets.into_iter().map(minimize).collect());
    let keep = match sets.first() {
        Some(first) if min_len(first) < STRONG_LEN => 2,
        _ => 1,
    };
    sets.truncate(keep);
    sets
}

/// Parse a pattern already in Rust syntax exactly as `regex::Regex::new`
/// does (same defaults), for [`necessary_sets`]; `None` when it does not
/// parse.
pub fn parse(pattern: &str) -> Option<Hir> {
    regex_syntax::ParserBuilder::new()
        .utf8(true)
        .build()
        .parse(pattern)
        .ok()
}

#[derive(Debug, Clone)]
enum Engine {
    /// No literal at all.
    None,
    /// Teddy searchers (leftmost-first).
    Teddy(Vec<packed::Searcher>),
    /// Every position whose first two bytes start a literal (a bit map) is
    /// looked up by its first three bytes; for texts too short for Teddy.
    Anchored(Anchors),
}

/// Which searcher to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Haystacks {
    /// Texts of hundreds of bytes or more: Teddy where it can be built.
    Long,
    /// Texts of tens of bytes: no start-up cost.
    Short,
}

/// A one-pass prefilter for many patterns (see the module docs).
///
/// It only searches ASCII haystacks: a literal with a non-ASCII byte can
/// never occur in one, so such members are left out (a set made only of
/// them is never seen, and rightly so: its pattern cannot match ASCII text).
#[derive(Debug, Clone)]
pub struct LiteralFilter {
    /// Per pattern: its range in `pattern_sets`.
    patterns: Vec<(u32, u32)>,
    /// Set ids, pattern after pattern.
    pattern_sets: Vec<u32>,
    n_sets: usize,
    /// Distinct ASCII literals and the sets they belong to.
    literals: Vec<(Vec<u8>, Vec<u32>)>,
    /// Literal indices by first byte.
    by_first: Vec<Vec<u32>>,
    engine: Engine,
}

impl LiteralFilter {
    /// `patterns[i]` holds the necessary sets of pattern `i` (as from
    /// [`necessary_sets`]); an empty list means the pattern always runs.
    pub fn new(patterns: &[Vec<Set>], haystacks: Haystacks) -> LiteralFilter {
        let mut literals: Vec<(Vec<u8>, Vec<u32>)> = Vec::new();
        let mut index: std::collections::BTreeMap<Vec<u8>, usize> = Default::default();
        let mut ranges = Vec::with_capacity(patterns.len());
        let mut pattern_sets = Vec::new();
        let mut n_sets = 0u32;
        for sets in patterns {
            let start = pattern_sets.len() as u32;
            for set in sets {
                if set.is_empty() || set.iter().any(|lit| lit.len() < USE_MIN_LEN) {
                    continue; // not a usable filter: the pattern runs anyway
                }
                let id = n_sets;
                n_sets += 1;
                pattern_sets.push(id);
                for lit in set.iter().filter(|lit| lit.is_ascii()) {
                    let i = *index.entry(lit.clone()).or_insert_with(|| {
                        literals.push((lit.clone(), Vec::new()));
                        literals.len() - 1
                    });
                    literals[i].1.push(id);
                }
            }
            ranges.push((start, pattern_sets.len() as u32));
        }
        let mut by_first = vec![Vec::new(); 256];
        for (i, (lit, _)) in literals.iter().enumerate() {
            by_first[usize::from(lit[0])].push(i as u32);
        }
        let engine = build_engine(&literals, haystacks);
        LiteralFilter {
            patterns: ranges,
            pattern_sets,
            n_sets: n_sets as usize,
            literals,
            by_first,
            engine,
        }
    }

    /// Words of the bit set [`LiteralFilter::search`] fills.
    pub fn words(&self) -> usize {
        self.n_sets.div_ceil(64)
    }

    /// Mark in `seen` (at least [`LiteralFilter::words`] long, zeroed) every
    /// set one of whose literals occurs in `haystack`, which must be ASCII
    /// and the ASCII lowercase of the text the patterns run on.
    pub fn search(&self, haystack: &[u8], seen: &mut [u64]) {
        debug_assert!(haystack.is_ascii());
        match &self.engine {
            Engine::None => {}
            // Teddy reports the leftmost match: no literal starts before
            // it. All literals starting there are marked and the search
            // goes on one byte later, so every start is visited.
            Engine::Teddy(searchers) => {
                for searcher in searchers {
                    let mut at = 0;
                    while at < haystack.len() {
                        let span = aho_corasick::Span::from(at..haystack.len());
                        let Some(m) = searcher.find_in(haystack, span) else {
                            break;
                        };
                        self.mark_at(haystack, m.start(), seen);
                        at = m.start() + 1;
                    }
                }
            }
            Engine::Anchored(anchors) => {
                if haystack.len() < USE_MIN_LEN {
                    return;
                }
                // A literal is at least USE_MIN_LEN long: it starts at most
                // there (`windows(2)` over `starts` plus one byte visits
                // exactly those positions).
                let starts = &haystack[..=haystack.len() - USE_MIN_LEN + 1];
                for (pos, w) in starts.windows(2).enumerate() {
                    if anchors.has_prefix(w[0], w[1]) {
                        let rest = &haystack[pos..];
                        if let Some(lits) = anchors.get(rest) {
                            self.mark_lits(lits, rest, seen);
                        }
                    }
                }
            }
        }
    }

    /// Mark the sets of every literal that starts at `pos`.
    fn mark_at(&self, haystack: &[u8], pos: usize, seen: &mut [u64]) {
        let rest = &haystack[pos..];
        self.mark_lits(&self.by_first[usize::from(rest[0])], rest, seen);
    }

    /// Mark the sets of those of `lits` that `rest` starts with.
    fn mark_lits(&self, lits: &[u32], rest: &[u8], seen: &mut [u64]) {
        for &i in lits {
            let (lit, sets) = &self.literals[i as usize];
            if rest.starts_with(lit) {
                for &set in sets {
                    seen[set as usize / 64] |= 1 << (set % 64);
                }
            }
        }
    }

    /// Whether pattern `i` may match: every one of its sets was seen.
    pub fn may_match(&self, i: usize, seen: &[u64]) -> bool {
        let (start, end) = self.patterns[i];
        self.pattern_sets[start as usize..end as usize]
            .iter()
            .all(|&set| seen[set as usize / 64] & (1 << (set % 64)) != 0)
    }

    /// Whether pattern `i` has a filter at all (`false`: it always runs).
    pub fn is_filtered(&self, i: usize) -> bool {
        let (start, end) = self.patterns[i];
        start < end
    }
}

/// Literals by their first [`USE_MIN_LEN`] bytes: an open-addressing table.
#[derive(Debug, Clone)]
struct Anchors {
    /// Bit `a | b << 8` set when some literal starts with bytes `a, b`.
    prefixes: Vec<u64>,
    /// `(key, literal indices)`; an empty slot has key `u32::MAX`.
    slots: Vec<(u32, Vec<u32>)>,
    shift: u32,
}

impl Anchors {
    fn new(literals: &[(Vec<u8>, Vec<u32>)]) -> Anchors {
        let mut prefixes = vec![0u64; (1 << 16) / 64];
        for (lit, _) in literals {
            let bit = usize::from(lit[0]) | usize::from(lit[1]) << 8;
            prefixes[bit / 64] |= 1 << (bit % 64);
        }
        let bits = (literals.len() * 2)
            .max(16)
            .next_power_of_two()
            .trailing_zeros();
        let mut anchors = Anchors {
            prefixes,
            slots: vec![(u32::MAX, Vec::new()); 1 << bits],
            shift: 32 - bits,
        };
        for (i, (lit, _)) in literals.iter().enumerate() {
            let key = Anchors::key(&lit[..USE_MIN_LEN]);
            let mut slot = anchors.slot(key);
            while anchors.slots[slot].0 != key && anchors.slots[slot].0 != u32::MAX {
                slot = (slot + 1) & (anchors.slots.len() - 1);
            }
            anchors.slots[slot].0 = key;
            anchors.slots[slot].1.push(i as u32);
        }
        anchors
    }

    fn has_prefix(&self, a: u8, b: u8) -> bool {
        let bit = usize::from(a) | usize::from(b) << 8;
        self.prefixes[bit / 64] & (1 << (bit % 64)) != 0
    }

    fn key(bytes: &[u8]) -> u32 {
        u32::from(bytes[0]) | u32::from(bytes[1]) << 8 | u32::from(bytes[2]) << 16
    }

    fn slot(&self, key: u32) -> usize {
        (key.wrapping_mul(0x9E37_79B1) >> self.shift) as usize
    }

    /// The literals that may start `bytes` (at least `USE_MIN_LEN` long):
    /// those sharing its first `USE_MIN_LEN` bytes.
    fn get(&self, bytes: &[u8]) -> Option<&[u32]> {
        let key = Anchors::key(bytes);
        let mut slot = self.slot(key);
        loop {
            let (k, lits) = &self.slots[slot];
            if *k == key {
                return Some(lits);
            }
            if *k == u32::MAX {
                return None;
            }
            slot = (slot + 1) & (self.slots.len() - 1);
        }
    }
}

fn build_engine(literals: &[(Vec<u8>, Vec<u32>)], haystacks: Haystacks) -> Engine {
    if literals.is_empty() {
        return Engine::None;
    }
    {
        // Group literals of similar length: a searcher's fingerprint is as
        // long as its shortest literal.
        let mut order: Vec<&[u8]> = literals.iter().map(|(l, _)| l.as_slice()).collect();
        order.sort_by_key(|l| std::cmp::Reverse(l.len()));
        let searchers: Option<Vec<packed::Searcher>> = order
            .chunks(TEDDY_CHUNK)
            .map(|chunk| {
                packed::Config::new()
                    .match_kind(packed::MatchKind::LeftmostFirst)
                    // Fat Teddy has twice the buckets: fewer false
                    // candidates once literals would share slim buckets.
                    .only_teddy_fat(match haystacks {
                        Haystacks::Long => Some(chunk.len() > 8),
                        Haystacks::Short => None,
                    })
                    .builder()
                    .extend(chunk)
                    .build()
            })
            .collect();
        if let Some(searchers) = searchers {
            return Engine::Teddy(searchers);
        }
    }
    Engine::Anchored(Anchors::new(literals))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sets(pattern: &str) -> Vec<Vec<String>> {
        crate::pyregex::necessary_sets(pattern)
            .iter()
            .map(|s| {
                s.iter()
                    .map(|l| String::from_utf8(l.clone()).unwrap())
                    .collect()
            })
            .collect()
    }

    /// Whether the filter lets pattern 0 run on `text`, where the pattern
    /// runs on `text` and the filter reads its ASCII lowercase.
    fn filter_allows(pattern: &str, text: &str, haystacks: Haystacks) -> bool {
        if !text.is_ascii() {
            return true; // callers never filter non-ASCII text
        }
        let filter = LiteralFilter::new(&[crate::pyregex::necessary_sets(pattern)], haystacks);
        let filter = anchored(filter, haystacks == Haystacks::Short);
        let mut seen = vec![0u64; filter.words()];
        filter.search(text.to_ascii_lowercase().as_bytes(), &mut seen);
        filter.may_match(0, &seen)
    }

    /// The filter with its engine replaced by the anchored fallback (used
    /// where Teddy cannot be built, so not otherwise reached on this CPU).
    fn anchored(mut filter: LiteralFilter, yes: bool) -> LiteralFilter {
        if yes && !filter.literals.is_empty() {
            filter.engine = Engine::Anchored(Anchors::new(&filter.literals));
        }
        filter
    }

    /// The one property that matters: the filter never hides a match.
    fn assert_sound(pattern: &str, text: &str) {
        let re = crate::pyregex::compile(pattern).unwrap();
        if re.is_match(text) {
            for haystacks in [Haystacks::Long, Haystacks::Short] {
                assert!(
                    filter_allows(pattern, text, haystacks),
                    "{pattern:?} matches {text:?} but was filtered out ({haystacks:?})"
                );
            }
        }
    }

    #[test]
    fn literal_sets() {
        assert_eq!(sets("jailbreak"), [["jailbreak"]]);
        assert_eq!(sets(r"act\s+as\s+root"), [vec!["root"], vec!["act"]]);
        assert_eq!(sets(r"rm\s+-rf"), [["-rf"]]);
        // Alternations: the union of one set per branch, reduced.
        assert_eq!(
            sets(r"history\s+-c|unset\s+histfile|histfile=/dev/null"),
            [["histfile", "history"]]
        );
        // Products of small classes and optional parts.
        assert_eq!(sets(r"crypto ?miners?"), [["crypto miner", "cryptominer"]]);
        // Case-insensitive patterns: ASCII folds into one literal, the
        // non-ASCII members (`ſ`, the Kelvin sign) stay literals of their own.
        assert_eq!(sets("(?i)/etc/gshadow"), [["/etc/gshadow", "/etc/gſhadow"]]);
        assert_eq!(sets("(?i)kill"), [["kill", "\u{212a}ill"]]);
        assert_eq!(sets("(?i)SUDO"), [["sudo", "ſudo"]]);
    }

    #[test]
    fn patterns_without_usable_literals_always_run() {
        for pattern in [
            "",
            "a*",
            r"(\*|\*/\d+)\s+\*",
            r"\b(id|whoami)\s*;",
            "ab|cdef",
            ".*",
            r"[a-z]+\d",
            "(?:xyzzy)?",
            "^$",
            r"\w{3}",
            "x{0}",
            "[^a]",
        ] {
            assert!(sets(pattern).is_empty(), "{pattern:?}: {:?}", sets(pattern));
            let filter =
                LiteralFilter::new(&[crate::pyregex::necessary_sets(pattern)], Haystacks::Long);
            assert!(!filter.is_filtered(0));
            assert!(filter.may_match(0, &vec![0; filter.words()]));
        }
    }

    #[test]
    fn hostile_cases_are_sound() {
        let patterns = [
            "(?i)kill",
            "(?i)ſtratum",
            "(?i)straße",
            "(?i)İnstall",
            "straße",
            "KILL",
            r"(?i)\bkworker\b",
            "(?i)/ETC/SHADOW",
            "ignore|previous|instructions",
            r"(?i)(wget|curl)\s+http",
            "abc(def)?ghi",
            "abc(def)*ghi",
            "abc(def){2,3}ghi",
            "a(?:)b(?:)c",
            r"xyz\b",
            "(?-u:xyz)",
            "(?i-u:xyz)",
            "[Ss][Uu][Dd][Oo]",
            "(?m)^root$",
        ];
        let texts = [
            "",
            "kill",
            "KILL -9",
            "\u{212a}ill",
            "ſtratum+tcp",
            "STRATUM+TCP",
            "STRASSE",
            "straße",
            "STRAẞE",
            "install İnstall",
            "xyz",
            "abcghi ABCDEFGHI abcdefdefghi abcdefdefdefghi",
            "abc",
            "run KWORKER now",
            "/etc/ſhadow /ETC/SHADOW",
            "WGET\thttp://x",
            "Sudo",
            "x\nroot\ny",
        ];
        for pattern in patterns {
            for text in texts {
                assert_sound(pattern, text);
            }
        }
    }

    #[test]
    fn finds_every_start_even_overlapping() {
        // "abcd" and "bc" overlap; "root" also starts where "roots" does.
        let patterns = vec![
            vec![std::iter::once(b"abcd".to_vec()).collect()],
            vec![std::iter::once(b"bcx".to_vec()).collect()],
            vec![std::iter::once(b"root".to_vec()).collect()],
            vec![std::iter::once(b"roots".to_vec()).collect()],
        ];
        for (haystacks, fallback) in [
            (Haystacks::Long, false),
            (Haystacks::Short, false),
            (Haystacks::Short, true),
        ] {
            let filter = anchored(LiteralFilter::new(&patterns, haystacks), fallback);
            let mut seen = vec![0; filter.words()];
            filter.search(b"zabcdbcxyz roots", &mut seen);
            for i in 0..4 {
                assert!(filter.may_match(i, &seen), "{i} {haystacks:?}");
            }
            let mut seen = vec![0; filter.words()];
            filter.search(b"abcroot", &mut seen);
            let got: Vec<bool> = (0..4).map(|i| filter.may_match(i, &seen)).collect();
            assert_eq!(got, [false, false, true, false], "{haystacks:?}");
            let mut seen = vec![0; filter.words()];
            filter.search(b"", &mut seen);
            assert!((0..4).all(|i| !filter.may_match(i, &seen)));
        }
    }

    #[test]
    fn many_literals_use_several_searchers() {
        // More literals than one Teddy searcher takes.
        let words: Vec<String> = (0..300).map(|i| format!("w{i:03}x")).collect();
        let patterns: Vec<Vec<Set>> = words
            .iter()
            .map(|w| vec![std::iter::once(w.as_bytes().to_vec()).collect()])
            .collect();
        let filter = LiteralFilter::new(&patterns, Haystacks::Long);
        let text = format!("{} and {}", words[7], words[299]);
        let mut seen = vec![0; filter.words()];
        filter.search(text.as_bytes(), &mut seen);
        let hits: Vec<usize> = (0..300).filter(|&i| filter.may_match(i, &seen)).collect();
        assert_eq!(hits, [7, 299]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Random patterns over a small alphabet, random texts (ASCII and
        /// not): whenever the regex matches, the filter lets it run.
        #[test]
        fn filter_is_sound(
            pattern in proptest::collection::vec(prop_oneof![
                Just("ab".to_owned()), Just("cd".to_owned()), Just("abc".to_owned()),
                Just("(?i)k".to_owned()), Just("s".to_owned()), Just("(ab|cde)".to_owned()),
                Just(r"\s+".to_owned()), Just("x?".to_owned()), Just("y*".to_owned()),
                Just("[a-c]".to_owned()), Just("(?i:sk)".to_owned()), Just(r"\b".to_owned()),
                Just(".".to_owned()), Just("(abc)+".to_owned()), Just("|".to_owned()),
            ], 1..6),
            text in proptest::collection::vec(prop_oneof![
                Just("ab"), Just("c"), Just("d"), Just("e"), Just("K"), Just("\u{212a}"),
                Just("s"), Just("S"), Just("ſ"), Just(" "), Just("\t"), Just("x"), Just("y"),
                Just("abc"), Just("cde"), Just("AB"), Just("k"),
            ], 0..12),
        ) {
            let pattern = pattern.concat();
            let text = text.concat();
            if crate::pyregex::compile(&pattern).is_ok() {
                assert_sound(&pattern, &text);
            }
        }
    }
}

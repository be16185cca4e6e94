//! Member names in the order recent lines had them, for the fast reader.
//!
//! Falco writes the members of one kind of event in one order, so the name
//! after a member is nearly always the name that followed it last time (on
//! the parity corpus: 95% of `output_fields` names, 99.9% of top-level
//! ones). [`KeyOrder`] remembers, per object (the event, its
//! `output_fields`), which name followed which. The fast reader checks a
//! member's name against that guess with a few word compares, and on a hit
//! skips the scan for the name's closing quote and the name lookup.
//!
//! A guess only saves work, never decides anything: a stored name has no
//! quote, backslash or control byte (it was read as a plain string), so a
//! name equal to it byte for byte and followed by `"` is exactly the string
//! the scan would have found, and any other name is read as usual.

use super::name_words;

/// Names remembered per object at most (beyond them, new names are read as
/// usual and not remembered): a bound for lines with ever-new names.
const NAMES_MAX: usize = 255;
/// Longest name remembered (three 8-byte words cover it).
const NAME_BYTES_MAX: usize = 24;
/// No name: nothing to guess from, or nothing guessed yet.
pub(super) const NONE: u32 = u32::MAX;
/// Index of each object's start, whose successor is its first name.
pub(super) const START: u32 = 0;
/// Slots of the direct-mapped table that finds a name's index.
const FIND_SLOTS: usize = 512;

/// The name orders of the two objects a Falco line has (see the module
/// docs). One per thread reading lines; [`KeyOrder::disabled`] guesses
/// nothing and costs nothing to make.
#[derive(Debug, Clone)]
pub struct KeyOrder {
    levels: [Level; 2],
}

#[derive(Debug, Clone, Default)]
struct Level {
    /// Index 0 is the object's start; the others are names.
    names: Vec<KnownName>,
    /// Name index by a hash of its words (0: none), for learning.
    find: Vec<u16>,
}

/// A name as read, in words, with what it is and what followed it.
#[derive(Debug, Clone, Copy)]
pub(super) struct KnownName {
    head: u64,
    /// Bytes 8..16 of a name longer than 16 bytes (0 otherwise).
    mid: u64,
    tail: u64,
    /// Its length (`u32::MAX` for the start, which no name matches).
    len: u32,
    /// What the member is to the reader (its slot, or a marker).
    pub(super) kind: u32,
    /// The index of the name that followed this one last time.
    next: u32,
}

impl KnownName {
    /// The words of `name`, which has at most [`NAME_BYTES_MAX`] bytes.
    fn words(name: &[u8]) -> (u64, u64, u64) {
        let (head, tail) = name_words(name);
        let mid = match name.get(8..16) {
            Some(eight) if name.len() > 16 => {
                u64::from_le_bytes(eight.try_into().expect("8 bytes"))
            }
            _ => 0,
        };
        (head, mid, tail)
    }

    /// The index just past the name when the string whose opening quote is
    /// at `quote` is this name.
    #[inline(always)]
    pub(super) fn matches_at(&self, b: &[u8], quote: usize) -> Option<usize> {
        let len = self.len as usize;
        let start = quote + 1;
        let name = b.get(start..start.checked_add(len)?)?;
        if b.get(start + len) != Some(&b'"') {
            return None;
        }
        // `words` restated so that the middle word is read only for names
        // over 16 bytes (through `words`: +0.4% instructions per event).
        let (head, tail) = name_words(name);
        let mid_ok = len <= 16 || {
            let eight = &name[8..16];
            u64::from_le_bytes(eight.try_into().expect("8 bytes")) == self.mid
        };
        (head == self.head && tail == self.tail && mid_ok).then_some(start + len)
    }
}

impl Default for KeyOrder {
    fn default() -> KeyOrder {
        KeyOrder::new()
    }
}

impl KeyOrder {
    /// An order that learns as lines are read.
    pub fn new() -> KeyOrder {
        let level = || Level {
            names: vec![KnownName {
                head: 0,
                mid: 0,
                tail: 0,
                len: u32::MAX,
                kind: 0,
                next: NONE,
            }],
            find: vec![0; FIND_SLOTS],
        };
        KeyOrder {
            levels: [level(), level()],
        }
    }

    /// An order that guesses and learns nothing (for reading one line).
    pub fn disabled() -> KeyOrder {
        KeyOrder {
            levels: [Level::default(), Level::default()],
        }
    }

    /// The name guessed to follow name `prev` of object `level` (0: the
    /// event, 1: its `output_fields`).
    #[inline(always)]
    pub(super) fn guess(&self, level: usize, prev: u32) -> Option<(u32, &KnownName)> {
        let names = &self.levels[level].names;
        let next = names.get(prev as usize)?.next;
        Some((next, names.get(next as usize)?))
    }

    /// Record that `name` (read as a plain string, of kind `kind`) followed
    /// name `prev`; returns the index of `name`, or [`NONE`] when it is not
    /// remembered.
    pub(super) fn learn(&mut self, level: usize, prev: u32, name: &[u8], kind: u32) -> u32 {
        let level = &mut self.levels[level];
        if level.names.is_empty() || name.len() > NAME_BYTES_MAX {
            return NONE;
        }
        let (head, mid, tail) = KnownName::words(name);
        let len = name.len() as u32;
        let slot = (head ^ tail.rotate_left(17) ^ mid.rotate_left(31) ^ u64::from(len))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            >> 55;
        let slot = slot as usize % FIND_SLOTS;
        let found = level.find[slot] as usize;
        let index = match level.names.get(found) {
            Some(known)
                if found != 0
                    && known.len == len
                    && (known.head, known.mid, known.tail) == (head, mid, tail) =>
            {
                found as u32
            }
            _ if level.names.len() <= NAMES_MAX => {
                level.names.push(KnownName {
                    head,
                    mid,
                    tail,
                    len,
                    kind,
                    next: NONE,
                });
                let index = level.names.len() - 1;
                level.find[slot] = index as u16;
                index as u32
            }
            _ => NONE,
        };
        if let Some(before) = level.names.get_mut(prev as usize) {
            before.next = index;
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_the_name_that_followed_last_time() {
        let mut order = KeyOrder::new();
        let a = order.learn(1, START, b"proc.name", 7);
        let b = order.learn(1, a, b"container.image.name", 9);
        assert_ne!(b, NONE, "24 bytes or fewer are remembered");
        let (guess, name) = order.guess(1, START).unwrap();
        assert_eq!((guess, name.kind), (a, 7));
        let line = br#"{"proc.name":"x"}"#;
        assert_eq!(name.matches_at(line, 1), Some(11));
        // Not the guess: another name, a longer one, a prefix, a cut line.
        for other in [
            &br#"{"proc.nam":"x"}"#[..],
            br#"{"proc.names":"x"}"#,
            br#"{"proc.name"#,
            br#"{"Proc.name":"x"}"#,
        ] {
            assert_eq!(name.matches_at(other, 1), None);
        }
        // Names over 16 bytes compare their middle word too: these two
        // share their first and last eight bytes.
        let (_, long) = order.guess(1, a).unwrap();
        assert_eq!(
            long.matches_at(br#"{"container.image.name":1}"#, 1),
            Some(22)
        );
        assert_eq!(long.matches_at(br#"{"container.XXage.name":1}"#, 1), None);
        // The same name learned again is the same index.
        assert_eq!(order.learn(1, START, b"proc.name", 7), a);
    }

    #[test]
    fn a_disabled_order_guesses_nothing() {
        let mut order = KeyOrder::disabled();
        assert_eq!(order.learn(0, START, b"rule", 1), NONE);
        assert!(order.guess(0, START).is_none());
    }

    #[test]
    fn ever_new_names_stop_being_remembered() {
        let mut order = KeyOrder::new();
        let mut prev = START;
        for i in 0..2 * NAMES_MAX {
            prev = order.learn(0, prev, format!("name{i}").as_bytes(), 0);
        }
        assert_eq!(prev, NONE);
        assert!(order.levels[0].names.len() <= NAMES_MAX + 1);
        assert_eq!(order.learn(0, START, &[b'x'; 25], 0), NONE);
    }
}

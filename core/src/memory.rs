//! Bounded, insertion-ordered per-process tables: the antibody loads
//! (SPEC §7) and the enforcement cooldown times (SPEC §9).
//!
//! When full, inserting a new key first drops the key inserted earliest;
//! updating a key does not move it. Since keys only ever leave from the
//! front, a queue of keys in insertion order stays exactly in step with the map.

use std::collections::{HashMap, VecDeque};

/// The per-process antibody loads.
pub type AntibodyTable = BoundedTable<f64>;

/// Keys a table has room for before it first grows, at most.
const INITIAL_ROOM_MAX: usize = 1024;

/// Bounded map from process key to a value.
#[derive(Debug, Clone)]
pub struct BoundedTable<V> {
    loads: HashMap<String, V>,
    order: VecDeque<String>,
    capacity: usize,
    evictions: u64,
}

impl<V: Copy> BoundedTable<V> {
    pub fn new(capacity: usize) -> BoundedTable<V> {
        assert!(capacity > 0, "table capacity must be positive");
        // Room for the first keys up front: a replay meets thousands of
        // processes in its first seconds, and each doubling rehashes them all.
        let room = capacity.min(INITIAL_ROOM_MAX);
        BoundedTable {
            loads: HashMap::with_capacity(room),
            order: VecDeque::with_capacity(room),
            capacity,
            evictions: 0,
        }
    }

    /// The stored value for `key`.
    pub fn get(&self, key: &str) -> Option<V> {
        self.loads.get(key).copied()
    }

    /// Store `load` for `key`, evicting the oldest key if a new key finds the table full.
    /// `store(key, f(get(key)))` with one hash lookup when the key is
    /// present (the common case: a process seen before); `f` also returns
    /// whatever else the caller computed from the old value.
    pub fn update<R>(&mut self, key: &str, f: impl FnOnce(Option<V>) -> (V, R)) -> R {
        if let Some(slot) = self.loads.get_mut(key) {
            let (load, result) = f(Some(*slot));
            *slot = load;
            return result;
        }
        let (load, result) = f(None);
        self.store(key, load);
        result
    }

    pub fn store(&mut self, key: &str, load: V) {
        if let Some(slot) = self.loads.get_mut(key) {
            *slot = load;
            return;
        }
        if self.loads.len() >= self.capacity {
            self.evict_oldest();
        }
        self.loads.insert(key.to_owned(), load);
        self.order.push_back(key.to_owned());
        debug_assert_eq!(self.loads.len(), self.order.len());
    }

    fn evict_oldest(&mut self) {
        if let Some(oldest) = self.order.pop_front() {
            self.loads.remove(&oldest);
            self.evictions += 1;
        }
    }

    pub fn len(&self) -> usize {
        self.loads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.loads.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Keys dropped to make room so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Entries in insertion order (for saving state).
    pub fn entries(&self) -> impl Iterator<Item = (&str, V)> {
        self.order.iter().map(|key| (key.as_str(), self.loads[key]))
    }

    /// Shrink or grow the bound; shrinking evicts the oldest keys.
    pub fn set_capacity(&mut self, capacity: usize) {
        assert!(capacity > 0, "table capacity must be positive");
        self.capacity = capacity;
        while self.loads.len() > capacity {
            self.evict_oldest();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_earliest_inserted_key_at_capacity() {
        let mut table = AntibodyTable::new(2);
        table.store("a", 0.1);
        table.store("b", 0.2);
        table.store("a", 0.3); // update: does not move `a`
        table.store("c", 0.4); // full: drops `a`, the earliest inserted
        assert_eq!(table.get("a"), None);
        assert_eq!(table.get("b"), Some(0.2));
        assert_eq!(table.get("c"), Some(0.4));
        assert_eq!(table.len(), 2);
        table.store("a", 0.5); // `a` is new again: drops `b`
        assert_eq!(table.get("b"), None);
        assert_eq!(
            table.entries().collect::<Vec<_>>(),
            vec![("c", 0.4), ("a", 0.5)]
        );
        assert_eq!(table.evictions(), 2);
    }

    #[test]
    fn update_is_get_then_store() {
        let mut table = AntibodyTable::new(2);
        let seen = table.update("a", |prev| (0.5, prev));
        assert_eq!(seen, None);
        let seen = table.update("a", |prev| (prev.unwrap_or(0.0) + 0.25, prev));
        assert_eq!(seen, Some(0.5));
        assert_eq!(table.get("a"), Some(0.75));
        table.update("b", |_| (0.1, ()));
        table.update("c", |_| (0.2, ())); // full: drops `a`, as `store` would
        assert_eq!(table.get("a"), None);
        assert_eq!(table.evictions(), 1);
        assert_eq!(
            table.entries().collect::<Vec<_>>(),
            vec![("b", 0.1), ("c", 0.2)]
        );
    }
}

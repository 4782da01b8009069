//! A small concurrent least-recently-used cache, for caches whose reads are hot and whose
//! inserts are rare (compiled plans, persisted documents): a read takes a shared lock and
//! stamps the entry; an insert into a full cache evicts the entry read longest ago.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard};

/// A cache of at most `capacity` entries.
pub struct Lru<K, V> {
    entries: RwLock<HashMap<K, Slot<V>>>,
    clock: AtomicU64,
    capacity: usize,
}

struct Slot<V> {
    value: V,
    used: AtomicU64,
}

impl<K: Hash + Eq + Clone, V: Clone> Lru<K, V> {
    /// An empty cache holding at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            clock: AtomicU64::new(0),
            capacity: capacity.max(1),
        }
    }

    /// The value of `key`, marking it used.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.read();
        let slot = entries.get(key)?;
        slot.used.store(self.tick(), Ordering::Relaxed);
        Some(slot.value.clone())
    }

    /// Whether `key` is cached (without marking it used).
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.read().contains_key(key)
    }

    /// Caches `value` under `key`; when full, first evicts the least recently used entry.
    /// The scan is linear: inserts are rare next to reads.
    pub fn insert(&self, key: K, value: V) {
        let used = AtomicU64::new(self.tick());
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, slot)| slot.used.load(Ordering::Relaxed))
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(key, Slot { value, used });
    }

    /// How many entries are cached.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<K, Slot<V>>> {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::Lru;

    #[test]
    fn a_full_cache_evicts_the_entry_used_longest_ago() {
        let cache = Lru::new(2);
        cache.insert("a", 1);
        cache.insert("b", 2);
        assert_eq!(cache.get("a"), Some(1));

        cache.insert("c", 3);

        assert_eq!(cache.get("b"), None);
        assert_eq!(cache.get("a"), Some(1));
        assert_eq!(cache.get("c"), Some(3));
        assert_eq!(cache.len(), 2);
        cache.insert("c", 4);
        assert_eq!((cache.get("a"), cache.get("c")), (Some(1), Some(4)));
    }
}

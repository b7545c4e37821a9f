//! The content-hash index of one dataset: which ids the store holds and the hash of each
//! one's latest version. It is what lets a sweep skip unchanged records without reading them.
//!
//! Ids are spread over [`BUCKETS`] buckets by a hash of the id; each bucket is one sled value
//! holding packed `[u16 id length][id][16-byte content hash]` entries. Loading the index is a
//! few thousand reads instead of one per record, and a sweep rewrites only the buckets its
//! new, changed and removed records fall into.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use super::StoreError;

/// Buckets per dataset.
pub const BUCKETS: u64 = 4096;

/// The bucket of an id, and the 64-bit id hash the in-memory map is keyed by.
pub fn locate(id: &str) -> (u16, u64) {
    let h = xxhash_rust::xxh3::xxh3_64(id.as_bytes());
    ((h % BUCKETS) as u16, h)
}

/// A hasher for keys that already are hashes.
#[derive(Default)]
pub struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type PreHashedMap<V> = HashMap<u64, V, BuildHasherDefault<PreHashed>>;

#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u128,
    bucket: u16,
    /// Where the id starts in its bucket's blob.
    offset: u32,
    len: u16,
    seen: bool,
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not in the store before this sweep.
    New,
    /// In the store with this content hash.
    Known(u128),
    /// Already taken in this sweep (listed twice).
    Again,
}

/// The loaded index, tracking which ids a sweep has seen.
#[derive(Debug, Default)]
pub struct Index {
    /// The bucket blobs, indexed by bucket (empty where a bucket has none).
    blobs: Vec<sled::IVec>,
    entries: PreHashedMap<Entry>,
    new_seen: HashSet<u64, BuildHasherDefault<PreHashed>>,
}

impl Index {
    /// Loads the index from its tree.
    pub fn load(tree: &sled::Tree) -> Result<Index, StoreError> {
        let mut index = Index {
            blobs: vec![sled::IVec::default(); BUCKETS as usize],
            ..Index::default()
        };
        for item in tree.iter() {
            let (k, blob) = item?;
            let bucket =
                u16::from_be_bytes(k.as_ref().try_into().map_err(|_| corrupt("bucket key"))?);
            for (offset, len, hash) in entries(&blob)? {
                let id = &blob[offset..offset + len];
                let (_, key) = locate(std::str::from_utf8(id).map_err(|_| corrupt("id"))?);
                index.entries.insert(
                    key,
                    Entry {
                        hash,
                        bucket,
                        offset: offset as u32,
                        len: len as u16,
                        seen: false,
                    },
                );
            }
            if let Some(slot) = index.blobs.get_mut(bucket as usize) {
                *slot = blob;
            }
        }
        Ok(index)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn id_bytes(&self, e: &Entry) -> &[u8] {
        let blob = &self.blobs[e.bucket as usize];
        &blob[e.offset as usize..e.offset as usize + e.len as usize]
    }

    fn id_of(&self, e: &Entry) -> &str {
        std::str::from_utf8(self.id_bytes(e)).unwrap_or_default()
    }

    /// Whether the store holds a record under `id` (without marking it seen).
    pub fn holds(&self, id: &str) -> bool {
        let (_, key) = locate(id);
        self.entries
            .get(&key)
            .is_some_and(|e| self.id_bytes(e) == id.as_bytes())
    }

    /// Marks `id` as seen in this sweep and says what the store knew of it.
    pub fn see(&mut self, id: &str) -> Seen {
        let (_, key) = locate(id);
        if let Some(e) = self.entries.get(&key).copied() {
            if self.id_bytes(&e) == id.as_bytes() {
                if e.seen {
                    return Seen::Again;
                }
                self.entries.get_mut(&key).expect("present").seen = true;
                return Seen::Known(e.hash);
            }
            tracing::error!(%id, other = self.id_of(&e), "two ids share a 64-bit hash; treating the newcomer as new");
        }
        if self.new_seen.insert(key) {
            Seen::New
        } else {
            Seen::Again
        }
    }

    /// The stored ids this sweep has not seen: after a complete sweep, the removals.
    pub fn unseen(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .entries
            .values()
            .filter(|e| !e.seen)
            .map(|e| self.id_of(e).to_string())
            .collect();
        ids.sort();
        ids
    }

    /// The new contents of every bucket touched by `upserts` and `removals`.
    pub fn rewrite(&self, upserts: &[(String, u128)], removals: &[String]) -> Vec<(u16, Vec<u8>)> {
        let mut touched: BTreeMap<u16, BTreeMap<String, Option<u128>>> = BTreeMap::new();
        for (id, hash) in upserts {
            touched
                .entry(locate(id).0)
                .or_default()
                .insert(id.clone(), Some(*hash));
        }
        for id in removals {
            touched
                .entry(locate(id).0)
                .or_default()
                .insert(id.clone(), None);
        }
        touched
            .into_iter()
            .map(|(bucket, changes)| {
                let mut out = Vec::new();
                if let Some(blob) = self.blobs.get(bucket as usize) {
                    for (offset, len, hash) in entries(blob).unwrap_or_default() {
                        let id =
                            std::str::from_utf8(&blob[offset..offset + len]).unwrap_or_default();
                        if !changes.contains_key(id) {
                            push(&mut out, id, hash);
                        }
                    }
                }
                for (id, hash) in &changes {
                    if let Some(hash) = hash {
                        push(&mut out, id, *hash);
                    }
                }
                (bucket, out)
            })
            .collect()
    }
}

fn push(out: &mut Vec<u8>, id: &str, hash: u128) {
    let len = u16::try_from(id.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&id.as_bytes()[..len as usize]);
    out.extend_from_slice(&hash.to_le_bytes());
}

/// (offset of id, id length, hash) of every entry of a bucket blob.
fn entries(blob: &[u8]) -> Result<Vec<(usize, usize, u128)>, StoreError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < blob.len() {
        let len = u16::from_le_bytes(
            blob.get(at..at + 2)
                .ok_or_else(|| corrupt("length"))?
                .try_into()
                .expect("2 bytes"),
        ) as usize;
        let id_at = at + 2;
        let hash_at = id_at + len;
        let hash = u128::from_le_bytes(
            blob.get(hash_at..hash_at + 16)
                .ok_or_else(|| corrupt("hash"))?
                .try_into()
                .expect("16 bytes"),
        );
        out.push((id_at, len, hash));
        at = hash_at + 16;
    }
    Ok(out)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt {
        what: "index",
        detail: what.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_then_load_round_trips_and_tracks_seen() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("index").unwrap();
        let empty = Index::load(&tree).unwrap();
        let ids: Vec<(String, u128)> = (0..500)
            .map(|i| (format!("id-{i}"), i as u128 * 7))
            .collect();
        for (bucket, blob) in empty.rewrite(&ids, &[]) {
            tree.insert(bucket.to_be_bytes(), blob).unwrap();
        }
        let mut index = Index::load(&tree).unwrap();
        assert_eq!(index.len(), 500);
        assert_eq!(index.see("id-3"), Seen::Known(21));
        assert_eq!(index.see("id-3"), Seen::Again);
        assert_eq!(index.see("fresh"), Seen::New);
        assert_eq!(index.see("fresh"), Seen::Again);
        for i in 0..500 {
            if i != 42 {
                index.see(&format!("id-{i}"));
            }
        }
        assert_eq!(index.unseen(), vec!["id-42".to_string()]);
        for (bucket, blob) in index.rewrite(&[("id-1".into(), 99)], &["id-42".into()]) {
            tree.insert(bucket.to_be_bytes(), blob).unwrap();
        }
        let mut again = Index::load(&tree).unwrap();
        assert_eq!(again.len(), 499);
        assert_eq!(again.see("id-1"), Seen::Known(99));
        assert_eq!(again.see("id-42"), Seen::New);
    }
}

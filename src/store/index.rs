//! The content-hash index of one dataset: which ids the store holds and the hash of each
//! one's latest version. It is what lets a sweep skip unchanged records without reading them.
//!
//! Ids are spread over [`BUCKETS`] buckets by a hash of the id; each bucket is one sled value
//! holding packed `[u16 id length][id][16-byte content hash][u32 record length]` entries
//! after a 3-byte header ([`FORMAT`]). Loading the index is a few thousand reads instead of
//! one per record, and a sweep rewrites only the buckets its new, changed and removed records
//! fall into. The record length lets a page scan hash a stored record in place of reading it
//! ([`crate::sources::lazy::scan_page`]).
//!
//! Buckets written before the length was kept have no header (an entry never starts with a
//! zero id length): their records' lengths are unknown until a sweep sees them.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use super::StoreError;

/// Buckets per dataset.
pub const BUCKETS: u64 = 4096;

/// The header of a bucket whose entries carry the record length.
const FORMAT: [u8; 3] = [0, 0, 2];

/// The bucket of an id, and the 64-bit id hash the in-memory map is keyed by.
pub fn locate(id: &str) -> (u16, u64) {
    let h = xxhash_rust::xxh3::xxh3_64(id.as_bytes());
    ((h % BUCKETS) as u16, h)
}

/// A second hash of an id, told apart from [`locate`]'s by its seed: two ids that share
/// both are taken as one (a chance of about 2^-128), so a lookup reads no id bytes.
fn check(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(id.as_bytes(), 0x9E37_79B9_7F4A_7C15)
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
    /// [`check`] of the id.
    check: u64,
    bucket: u16,
    /// Where the id starts in its bucket's blob.
    offset: u32,
    id_len: u16,
    /// The record's length in bytes; 0 if not known (a bucket of the older format).
    len: u32,
    seen: bool,
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not in the store before this sweep.
    New,
    /// In the store with this content hash, and this length (0 if not known).
    Known(u128, usize),
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
            for (offset, id_len, hash, len) in entries(&blob)? {
                let id = &blob[offset..offset + id_len];
                let id = std::str::from_utf8(id).map_err(|_| corrupt("id"))?;
                let (_, key) = locate(id);
                index.entries.insert(
                    key,
                    Entry {
                        hash,
                        check: check(id),
                        bucket,
                        offset: offset as u32,
                        id_len: id_len as u16,
                        len,
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
        &blob[e.offset as usize..e.offset as usize + e.id_len as usize]
    }

    fn id_of(&self, e: &Entry) -> &str {
        std::str::from_utf8(self.id_bytes(e)).unwrap_or_default()
    }

    /// Whether the store holds a record under `id` (without marking it seen).
    pub fn holds(&self, id: &str) -> bool {
        let (_, key) = locate(id);
        self.entries.get(&key).is_some_and(|e| e.check == check(id))
    }

    /// If `from` starts with the record stored under `id` — its stored length of bytes
    /// hashes to its stored hash — and this sweep has not seen `id` yet: marks it seen and
    /// returns that length. One lookup for an unchanged record, none of its bytes parsed.
    pub fn see_unchanged(&mut self, id: &str, from: &[u8]) -> Option<usize> {
        let (_, key) = locate(id);
        let e = self.entries.get_mut(&key)?;
        if e.seen || e.len == 0 || e.check != check(id) {
            return None;
        }
        let bytes = from.get(..e.len as usize)?;
        (super::content_hash(bytes) == e.hash).then(|| {
            e.seen = true;
            bytes.len()
        })
    }

    /// Marks `id` as seen in this sweep and says what the store knew of it.
    pub fn see(&mut self, id: &str) -> Seen {
        let (_, key) = locate(id);
        if let Some(e) = self.entries.get(&key).copied() {
            if e.check == check(id) {
                if e.seen {
                    return Seen::Again;
                }
                self.entries.get_mut(&key).expect("present").seen = true;
                return Seen::Known(e.hash, e.len as usize);
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

    /// The new contents of every bucket touched by `upserts` (id, hash, record length) and
    /// `removals`.
    pub fn rewrite(
        &self,
        upserts: &[(String, u128, usize)],
        removals: &[String],
    ) -> Vec<(u16, Vec<u8>)> {
        // (bucket, id, change) sorted by bucket and id; of one id given twice the later wins
        // (a removal after an upsert), the sort being stable.
        let mut changes: Vec<BucketChange<'_>> = upserts
            .iter()
            .map(|(id, hash, len)| {
                let len = u32::try_from(*len).unwrap_or(0);
                (locate(id).0, id.as_str(), Some((*hash, len)))
            })
            .chain(removals.iter().map(|id| (locate(id).0, id.as_str(), None)))
            .collect();
        changes.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let mut last: Vec<BucketChange<'_>> = Vec::with_capacity(changes.len());
        for change in changes {
            match last.last_mut() {
                Some(prev) if (prev.0, prev.1) == (change.0, change.1) => *prev = change,
                _ => last.push(change),
            }
        }
        last.chunk_by(|a, b| a.0 == b.0)
            .map(|run| {
                let bucket = run[0].0;
                let mut out = FORMAT.to_vec();
                if let Some(blob) = self.blobs.get(bucket as usize) {
                    for (offset, id_len, hash, len) in entries(blob).unwrap_or_default() {
                        let id =
                            std::str::from_utf8(&blob[offset..offset + id_len]).unwrap_or_default();
                        if run.binary_search_by(|c| c.1.cmp(id)).is_err() {
                            push(&mut out, id, hash, len);
                        }
                    }
                }
                for (_, id, change) in run {
                    if let Some((hash, len)) = change {
                        push(&mut out, id, *hash, *len);
                    }
                }
                if out.len() == FORMAT.len() {
                    out.clear();
                }
                (bucket, out)
            })
            .collect()
    }
}

/// One change of a rewrite: (bucket, id, new hash and record length, or `None` if removed).
type BucketChange<'a> = (u16, &'a str, Option<(u128, u32)>);

fn push(out: &mut Vec<u8>, id: &str, hash: u128, len: u32) {
    let id_len = u16::try_from(id.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&id_len.to_le_bytes());
    out.extend_from_slice(&id.as_bytes()[..id_len as usize]);
    out.extend_from_slice(&hash.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
}

/// (offset of id, id length, hash, record length or 0) of every entry of a bucket blob.
fn entries(blob: &[u8]) -> Result<Vec<(usize, usize, u128, u32)>, StoreError> {
    let mut out = Vec::new();
    let with_len = blob.starts_with(&FORMAT);
    let mut at = if with_len { FORMAT.len() } else { 0 };
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
        at = hash_at + 16;
        let mut record_len = 0;
        if with_len {
            record_len = u32::from_le_bytes(
                blob.get(at..at + 4)
                    .ok_or_else(|| corrupt("record length"))?
                    .try_into()
                    .expect("4 bytes"),
            );
            at += 4;
        }
        out.push((id_at, len, hash, record_len));
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
        let ids: Vec<(String, u128, usize)> = (0..500)
            .map(|i| (format!("id-{i}"), i as u128 * 7, 100 + i))
            .collect();
        for (bucket, blob) in empty.rewrite(&ids, &[]) {
            tree.insert(bucket.to_be_bytes(), blob).unwrap();
        }
        let mut index = Index::load(&tree).unwrap();
        assert_eq!(index.len(), 500);
        assert_eq!(index.see("id-3"), Seen::Known(21, 103));
        assert_eq!(index.see("id-3"), Seen::Again);
        assert_eq!(index.see("fresh"), Seen::New);
        assert_eq!(index.see("fresh"), Seen::Again);
        for i in 0..500 {
            if i != 42 {
                index.see(&format!("id-{i}"));
            }
        }
        assert_eq!(index.unseen(), vec!["id-42".to_string()]);
        for (bucket, blob) in index.rewrite(&[("id-1".into(), 99, 7)], &["id-42".into()]) {
            tree.insert(bucket.to_be_bytes(), blob).unwrap();
        }
        let mut again = Index::load(&tree).unwrap();
        assert_eq!(again.len(), 499);
        assert_eq!(again.see("id-1"), Seen::Known(99, 7));
        assert_eq!(again.see("id-2"), Seen::Known(14, 102));
        assert_eq!(again.see("id-42"), Seen::New);
        // Of an id given twice the later wins: upserted twice, or upserted and removed.
        let twice = [
            ("id-5".into(), 1, 1),
            ("id-6".into(), 2, 2),
            ("id-5".into(), 3, 3),
        ];
        for (bucket, blob) in again.rewrite(&twice, &["id-6".into()]) {
            tree.insert(bucket.to_be_bytes(), blob).unwrap();
        }
        let mut last = Index::load(&tree).unwrap();
        assert_eq!(last.len(), 498);
        assert_eq!(last.see("id-5"), Seen::Known(3, 3));
        assert_eq!(last.see("id-6"), Seen::New);
        assert_eq!(last.see("id-7"), Seen::Known(49, 107));
    }

    #[test]
    fn a_bucket_of_the_older_format_reads_without_lengths_and_gains_them_when_rewritten() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("index").unwrap();
        // [u16 id length][id][16-byte hash], no header: as folders before the lengths hold.
        let (a, b) = ("ref-a", "ref-b");
        for (id, hash) in [(a, 5u128), (b, 6)] {
            let mut old = tree
                .get(locate(id).0.to_be_bytes())
                .unwrap()
                .map(|v| v.to_vec())
                .unwrap_or_default();
            old.extend_from_slice(&(id.len() as u16).to_le_bytes());
            old.extend_from_slice(id.as_bytes());
            old.extend_from_slice(&hash.to_le_bytes());
            tree.insert(locate(id).0.to_be_bytes(), old).unwrap();
        }
        let mut index = Index::load(&tree).unwrap();
        assert_eq!(index.len(), 2);
        assert!(index.holds(a));
        assert_eq!(index.see(a), Seen::Known(5, 0), "no length is known");
        for (bucket, blob) in index.rewrite(&[(a.into(), 5, 40)], &[]) {
            tree.insert(bucket.to_be_bytes(), blob).unwrap();
        }
        let mut again = Index::load(&tree).unwrap();
        assert_eq!(again.see(a), Seen::Known(5, 40));
        // Whether or not it shares a's bucket, b's length is still unknown.
        assert_eq!(again.see(b), Seen::Known(6, 0));
        assert_eq!(again.len(), 2);
    }

    #[test]
    fn an_unchanged_record_is_seen_by_its_bytes_once() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("index").unwrap();
        let record = br#"{"id":"r-1","v":1}"#;
        let upserts = [(
            "r-1".to_string(),
            super::super::content_hash(record),
            record.len(),
        )];
        for (bucket, blob) in Index::load(&tree).unwrap().rewrite(&upserts, &[]) {
            tree.insert(bucket.to_be_bytes(), blob).unwrap();
        }
        let mut index = Index::load(&tree).unwrap();
        let page = br#"{"id":"r-1","v":1},{"id":"r-2"}]}"#;
        assert_eq!(
            index.see_unchanged("r-1", br#"{"id":"r-1","v":2},{"id":"r-2"}]}"#),
            None
        );
        assert_eq!(
            index.see_unchanged("r-1", b"{\"id\""),
            None,
            "shorter than the record"
        );
        assert_eq!(index.see_unchanged("r-2", page), None, "not stored");
        assert_eq!(index.see_unchanged("r-1", page), Some(record.len()));
        assert_eq!(index.see_unchanged("r-1", page), None, "seen already");
        assert_eq!(index.see("r-1"), Seen::Again);
        assert!(index.unseen().is_empty());
    }
}

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

use std::collections::HashMap;
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
    /// [`locate`]'s hash of the id: the key of `places`.
    key: u64,
    /// [`check`] of the id.
    check: u64,
    bucket: u16,
    /// Where the id starts in its bucket's blob.
    offset: u32,
    id_len: u16,
    /// The record's length in bytes; 0 if not known (a bucket of the older format).
    len: u32,
    seen: bool,
    /// Its place in this sweep's order is taken ([`Index::see_unchanged`]).
    ordered: bool,
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
///
/// Its entries lie in the order in which the last complete sweep saw their ids (where that
/// order was kept, [`Index::order`]), and a lookup tries the entry after the last one seen
/// before it asks the map. An API lists its records in the same order sweep after sweep, so
/// nearly every lookup reads the next entry in memory. Through the map, each would be a
/// cache miss that the next record has to wait for: the record's stored length, which says
/// where the next record starts, is what the lookup finds.
#[derive(Debug, Default)]
pub struct Index {
    /// The bucket blobs, indexed by bucket (empty where a bucket has none).
    blobs: Vec<sled::IVec>,
    entries: Vec<Entry>,
    /// Of each id's [`locate`] hash, its place in `entries`.
    places: PreHashedMap<u32>,
    /// The ids not in the index that this sweep has come to, and whether each was taken
    /// ([`Index::see`]) or only had its place in the order noted ([`Index::see_unchanged`]).
    new_seen: PreHashedMap<bool>,
    /// The place after the entry last seen: where the next record is looked for first.
    next: usize,
    /// The [`locate`] hashes of the ids this sweep has seen, in the order it saw them.
    seen_order: Vec<u64>,
    /// The order the entries were laid out in ([`Index::load_ordered`]), as kept.
    kept_order: Option<sled::IVec>,
}

/// The key of the one value of a dataset's order tree: the ids' [`locate`] hashes, packed
/// little-endian, as [`Index::order`] makes them.
const ORDER_KEY: &[u8] = b"ids";

/// Keeps `order` ([`Index::order`]) in `tree`, for [`Index::load_ordered`].
pub fn keep_order(tree: &sled::Tree, order: &[u8]) -> Result<(), StoreError> {
    tree.insert(ORDER_KEY, order)?;
    Ok(())
}

/// The writes of rewritten buckets ([`Index::rewrite`]) to the index tree: (key, blob), or
/// (key, `None`) for a bucket left empty, which is removed.
fn bucket_writes(
    buckets: &[(u16, Vec<u8>)],
) -> impl Iterator<Item = ([u8; 2], Option<&[u8]>)> + '_ {
    buckets.iter().map(|(bucket, blob)| {
        let blob = (!blob.is_empty()).then_some(blob.as_slice());
        (bucket.to_be_bytes(), blob)
    })
}

/// A batch that writes rewritten buckets to the index tree, for a sweep's transaction.
pub fn bucket_batch(buckets: &[(u16, Vec<u8>)]) -> sled::Batch {
    let mut batch = sled::Batch::default();
    for (key, blob) in bucket_writes(buckets) {
        match blob {
            Some(blob) => batch.insert(&key, blob),
            None => batch.remove(&key),
        }
    }
    batch
}

/// Writes rewritten buckets to the index tree one at a time, in the order given (a
/// rewrite's is bucket order). Not as a `sled::Batch`: sled applies one in hash-map order,
/// and random inserts leave every leaf split and patched ([`Store::write_records`](super::Store::write_records)).
pub fn write_buckets(tree: &sled::Tree, buckets: &[(u16, Vec<u8>)]) -> Result<(), StoreError> {
    for (key, blob) in bucket_writes(buckets) {
        match blob {
            Some(blob) => tree.insert(key, blob)?,
            None => tree.remove(key)?,
        };
    }
    Ok(())
}

impl Index {
    /// Loads the index from its tree, its entries in the order kept in `order`
    /// ([`keep_order`]). The order only speeds lookups up: one that is missing, stale or
    /// damaged costs time, never a wrong answer.
    pub fn load_ordered(tree: &sled::Tree, order: &sled::Tree) -> Result<Index, StoreError> {
        let mut index = Self::load(tree)?;
        if let Some(keys) = order.get(ORDER_KEY)? {
            if keys.len() % 8 == 0 {
                index.arrange(&keys);
                index.kept_order = Some(keys);
            }
        }
        Ok(index)
    }

    /// Lays the entries out in the order of `keys` (packed little-endian [`locate`] hashes);
    /// entries whose id is not among them follow, as they were. In place: the entries are
    /// permuted and the map's places renumbered, neither copied nor rehashed.
    fn arrange(&mut self, keys: &[u8]) {
        const UNPLACED: u32 = u32::MAX;
        let mut target = vec![UNPLACED; self.entries.len()];
        let mut next = 0u32;
        for key in keys.chunks_exact(8) {
            let key = u64::from_le_bytes(key.try_into().expect("8 bytes"));
            if let Some(&at) = self.places.get(&key) {
                let slot = &mut target[at as usize];
                if *slot == UNPLACED {
                    *slot = next;
                    next += 1;
                }
            }
        }
        for slot in target.iter_mut().filter(|slot| **slot == UNPLACED) {
            *slot = next;
            next += 1;
        }
        for at in self.places.values_mut() {
            *at = target[*at as usize];
        }
        // Each swap puts one entry where it belongs.
        for i in 0..self.entries.len() {
            while target[i] as usize != i {
                let to = target[i] as usize;
                self.entries.swap(i, to);
                target.swap(i, to);
            }
        }
    }

    /// Loads the index from its tree, its entries in bucket order.
    pub fn load(tree: &sled::Tree) -> Result<Index, StoreError> {
        let mut index = Index {
            blobs: vec![sled::IVec::default(); BUCKETS as usize],
            ..Index::default()
        };
        // The entries are counted first, so that the map and the list are sized once: grown
        // entry by entry, the map would be rehashed (and its memory touched) a dozen times on
        // the way to 100,000. Counting reads only the entries' lengths.
        let mut loaded = Vec::new();
        let mut count = 0;
        for item in tree.iter() {
            let (k, blob) = item?;
            let bucket =
                u16::from_be_bytes(k.as_ref().try_into().map_err(|_| corrupt("bucket key"))?);
            count += Entries::new(&blob).count();
            loaded.push((bucket, blob));
        }
        index.entries.reserve(count);
        index.places.reserve(count);
        for (bucket, blob) in loaded {
            for found in Entries::new(&blob) {
                let (offset, id_len, hash, len) = found?;
                let id = &blob[offset..offset + id_len];
                let id = std::str::from_utf8(id).map_err(|_| corrupt("id"))?;
                let (_, key) = locate(id);
                // Of two ids with one hash (about 2^-64), the later is the one found.
                index.places.insert(key, index.entries.len() as u32);
                index.entries.push(Entry {
                    hash,
                    key,
                    check: check(id),
                    bucket,
                    offset: offset as u32,
                    id_len: id_len as u16,
                    len,
                    seen: false,
                    ordered: false,
                });
            }
            if let Some(slot) = index.blobs.get_mut(bucket as usize) {
                *slot = blob;
            }
        }
        Ok(index)
    }

    pub fn len(&self) -> usize {
        self.places.len()
    }

    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    /// The place of the entry of the id with these hashes: the one after the last seen if it
    /// is that id's, else the map's.
    fn place(&self, key: u64, check: u64) -> Option<usize> {
        if let Some(e) = self.entries.get(self.next) {
            if e.key == key && e.check == check {
                return Some(self.next);
            }
        }
        let at = *self.places.get(&key)? as usize;
        (self.entries[at].check == check).then_some(at)
    }

    /// Marks the entry at `at` seen.
    fn mark(&mut self, at: usize) {
        self.place_in_order(at);
        self.entries[at].seen = true;
    }

    /// Notes the entry at `at` in this sweep's order, once.
    fn place_in_order(&mut self, at: usize) {
        let e = &mut self.entries[at];
        if !e.ordered {
            e.ordered = true;
            self.seen_order.push(e.key);
        }
        self.next = at + 1;
    }

    /// The ids this sweep has seen (their [`locate`] hashes, packed little-endian), in the
    /// order it saw them: after a complete sweep, the order [`Index::load_ordered`] lays the
    /// next sweep's entries out in.
    pub fn order(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.seen_order.len() * 8);
        for key in &self.seen_order {
            out.extend_from_slice(&key.to_le_bytes());
        }
        out
    }

    /// [`Index::order`], unless it is the order that was kept already: an API that lists its
    /// records in the same order sweep after sweep leaves nothing to write.
    pub fn changed_order(&self) -> Option<Vec<u8>> {
        let order = self.order();
        (self.kept_order.as_deref() != Some(&order[..])).then_some(order)
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
        self.place(key, check(id)).is_some()
    }

    /// If `from` starts with the record stored under `id` — its stored length of bytes
    /// hashes to its stored hash — and this sweep has not seen `id` yet: marks it seen and
    /// returns that length. One lookup for an unchanged record, none of its bytes parsed.
    ///
    /// A record that is not unchanged is taken later ([`Index::see`], after the page's
    /// scan), but its place in the order is here: noted later, each changed or new record
    /// would move to the end of its page, and every sweep with a change would write the
    /// whole order again.
    pub fn see_unchanged(&mut self, id: &str, from: &[u8]) -> Option<usize> {
        let (_, key) = locate(id);
        let Some(at) = self.place(key, check(id)) else {
            if self.places.contains_key(&key) {
                return None; // an id sharing a known one's hash: left to `see`
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = self.new_seen.entry(key) {
                slot.insert(false);
                self.seen_order.push(key);
            }
            return None;
        };
        if self.entries[at].seen {
            return None;
        }
        self.place_in_order(at);
        let e = &self.entries[at];
        if e.len == 0 {
            return None;
        }
        let bytes = from.get(..e.len as usize)?;
        if super::content_hash(bytes) != e.hash {
            return None;
        }
        self.mark(at);
        Some(bytes.len())
    }

    /// Marks `id` as seen in this sweep and says what the store knew of it.
    pub fn see(&mut self, id: &str) -> Seen {
        let (_, key) = locate(id);
        if let Some(at) = self.place(key, check(id)) {
            let e = self.entries[at];
            if e.seen {
                return Seen::Again;
            }
            self.mark(at);
            return Seen::Known(e.hash, e.len as usize);
        }
        if let Some(&at) = self.places.get(&key) {
            let other = self.id_of(&self.entries[at as usize]);
            tracing::error!(%id, other, "two ids share a 64-bit hash; treating the newcomer as new");
        }
        match self.new_seen.get_mut(&key) {
            Some(true) => Seen::Again,
            Some(taken) => {
                *taken = true;
                Seen::New
            }
            None => {
                self.new_seen.insert(key, true);
                self.seen_order.push(key);
                Seen::New
            }
        }
    }

    /// The stored ids this sweep has not seen: after a complete sweep, the removals.
    pub fn unseen(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .places
            .values()
            .map(|&at| &self.entries[at as usize])
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
                    let kept: Result<Vec<_>, _> = Entries::new(blob).collect();
                    for (offset, id_len, hash, len) in kept.unwrap_or_default() {
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

/// (offset of id, id length, hash, record length or 0) of every entry of a bucket blob, in
/// order; an error where the blob ends inside an entry (and nothing after it).
struct Entries<'a> {
    blob: &'a [u8],
    at: usize,
    with_len: bool,
}

impl<'a> Entries<'a> {
    fn new(blob: &'a [u8]) -> Self {
        let with_len = blob.starts_with(&FORMAT);
        Entries {
            blob,
            at: if with_len { FORMAT.len() } else { 0 },
            with_len,
        }
    }

    fn read(&mut self) -> Result<(usize, usize, u128, u32), StoreError> {
        let (blob, at) = (self.blob, self.at);
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
        self.at = hash_at + 16;
        let mut record_len = 0;
        if self.with_len {
            record_len = u32::from_le_bytes(
                blob.get(self.at..self.at + 4)
                    .ok_or_else(|| corrupt("record length"))?
                    .try_into()
                    .expect("4 bytes"),
            );
            self.at += 4;
        }
        Ok((id_at, len, hash, record_len))
    }
}

impl Iterator for Entries<'_> {
    type Item = Result<(usize, usize, u128, u32), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.blob.len() {
            return None;
        }
        let entry = self.read();
        if entry.is_err() {
            self.at = self.blob.len();
        }
        Some(entry)
    }
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
    use rand::SeedableRng;

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

    /// A temporary database with an index tree and an order tree.
    fn index_and_order() -> (sled::Db, sled::Tree, sled::Tree) {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let (tree, order) = (
            db.open_tree("index").unwrap(),
            db.open_tree("order").unwrap(),
        );
        (db, tree, order)
    }

    /// What the index holds of records: (id, hash, length).
    type Indexed = Vec<(String, u128, usize)>;

    /// `n` records `{"id":"r-i","v":i}` written to `tree`'s index: their bytes, and what the
    /// index holds of each.
    fn stored_records(tree: &sled::Tree, n: usize) -> (Vec<Vec<u8>>, Indexed) {
        let records: Vec<Vec<u8>> = (0..n)
            .map(|i| format!(r#"{{"id":"r-{i}","v":{i}}}"#).into_bytes())
            .collect();
        let stored: Indexed = records
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("r-{i}"), super::super::content_hash(r), r.len()))
            .collect();
        write_buckets(tree, &Index::load(tree).unwrap().rewrite(&stored, &[])).unwrap();
        (records, stored)
    }

    #[test]
    fn entries_follow_the_kept_order_and_every_lookup_answers_as_without_it() {
        let (_db, tree, order) = index_and_order();
        let ids: Vec<(String, u128, usize)> = (0..600)
            .map(|i| (format!("ref-{i}"), i as u128 * 11, 200 + i))
            .collect();
        for (bucket, blob) in Index::load(&tree).unwrap().rewrite(&ids, &[]) {
            tree.insert(bucket.to_be_bytes(), blob).unwrap();
        }
        // A sweep in a shuffled order, with a new id in it and ref-5 missing.
        let mut swept: Vec<String> = ids.iter().map(|(id, ..)| id.clone()).collect();
        swept.retain(|id| id != "ref-5");
        swept.insert(300, "ref-new".into());
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        rand::seq::SliceRandom::shuffle(&mut swept[..], &mut rng);
        let mut first = Index::load_ordered(&tree, &order).unwrap();
        for id in &swept {
            first.see(id);
        }
        let kept = first.order();
        assert_eq!(kept.len(), swept.len() * 8);

        keep_order(&order, &kept).unwrap();
        let ordered = Index::load_ordered(&tree, &order).unwrap();
        let expected: Vec<u64> = swept
            .iter()
            .filter(|id| *id != "ref-new")
            .map(|id| locate(id).1)
            .chain([locate("ref-5").1])
            .collect();
        let laid_out: Vec<u64> = ordered.entries.iter().map(|e| e.key).collect();
        assert_eq!(
            laid_out, expected,
            "in the kept order, the unlisted id last"
        );

        // Every order (kept, reversed, damaged, none) gives the same answers, in any order of
        // lookups: the one kept, another, and ids seen twice.
        let mut reversed = kept.chunks(8).rev().flatten().copied().collect::<Vec<u8>>();
        reversed.extend_from_slice(&kept[..16]);
        let damaged = kept[..kept.len() - 3].to_vec();
        let mut lookups: Vec<String> = swept.clone();
        lookups.extend(["ref-5".to_string(), "ref-7".into(), "nobody".into()]);
        let mut answers = Vec::new();
        for hint in [Some(&kept), Some(&reversed), Some(&damaged), None] {
            match hint {
                Some(h) => keep_order(&order, h).unwrap(),
                None => order.clear().unwrap(),
            }
            let mut index = Index::load_ordered(&tree, &order).unwrap();
            assert_eq!(index.len(), 600);
            let got: Vec<(Seen, bool)> = lookups
                .iter()
                .map(|id| (index.see(id), index.holds(id)))
                .collect();
            answers.push((got, index.unseen()));
        }
        for (id, hash, len) in ids.iter().take(20) {
            let at = lookups.iter().position(|l| l == id).unwrap();
            assert_eq!(answers[0].0[at].0, Seen::Known(*hash, *len), "{id}");
        }
        assert!(answers.iter().all(|a| *a == answers[0]));
        assert_eq!(answers[0].0[lookups.len() - 1], (Seen::New, false));
        assert_eq!(
            answers[0].0[lookups.len() - 2],
            (Seen::Again, true),
            "ref-7 twice"
        );
        assert!(answers[0].1.is_empty());
    }

    #[test]
    fn an_order_is_written_again_only_when_a_sweep_saw_another_one() {
        let (_db, tree, order) = index_and_order();
        let ids: Vec<(String, u128, usize)> = (0..300)
            .map(|i| (format!("r-{i}"), i as u128, 10 + i))
            .collect();
        for (bucket, blob) in Index::load(&tree).unwrap().rewrite(&ids, &[]) {
            tree.insert(bucket.to_be_bytes(), blob).unwrap();
        }
        let sweep = |seen: &[&str]| {
            let mut index = Index::load_ordered(&tree, &order).unwrap();
            for id in seen {
                index.see(id);
            }
            index.changed_order()
        };
        let listed: Vec<String> = ids.iter().rev().map(|(id, ..)| id.clone()).collect();
        let listed: Vec<&str> = listed.iter().map(String::as_str).collect();
        // Nothing kept yet: the first complete sweep's order is written.
        let first = sweep(&listed).expect("no order was kept");
        keep_order(&order, &first).unwrap();
        assert_eq!(sweep(&listed), None, "the same order again");
        let mut swapped = listed.clone();
        swapped.swap(10, 11);
        assert!(sweep(&swapped).is_some(), "two ids swapped");
        assert!(sweep(&listed[1..]).is_some(), "one id gone");
        let mut more = listed.clone();
        more.push("r-new");
        assert!(sweep(&more).is_some(), "one id more");
    }

    #[test]
    fn changed_and_new_records_keep_their_places_in_the_order_though_taken_after_the_scan() {
        let (_db, tree, order) = index_and_order();
        let (records, stored) = stored_records(&tree, 40);
        // A page as a sweep reads it: the scan asks about every record in page order, and
        // what is not unchanged is taken after the scan. r-7 changed; r-new is new.
        let mut listed: Vec<(String, Vec<u8>)> = stored
            .iter()
            .zip(&records)
            .map(|((id, ..), r)| (id.clone(), r.clone()))
            .collect();
        listed[7].1 = br#"{"id":"r-7","v":"changed"}"#.to_vec();
        listed.insert(20, ("r-new".into(), br#"{"id":"r-new"}"#.to_vec()));
        let sweep = || {
            let mut index = Index::load_ordered(&tree, &order).unwrap();
            let mut later = Vec::new();
            for (id, raw) in &listed {
                if index.see_unchanged(id, raw).is_none() {
                    later.push(id.as_str());
                }
            }
            let taken: Vec<Seen> = later.iter().map(|id| index.see(id)).collect();
            (index, later, taken)
        };
        let (first, later, taken) = sweep();
        assert_eq!(later, ["r-7", "r-new"]);
        assert!(
            matches!(taken[..], [Seen::Known(..), Seen::New]),
            "{taken:?}"
        );
        let in_page_order: Vec<u8> = listed
            .iter()
            .flat_map(|(id, _)| locate(id).1.to_le_bytes())
            .collect();
        assert_eq!(first.order(), in_page_order, "each where the page has it");
        keep_order(&order, &first.order()).unwrap();
        let (again, ..) = sweep();
        assert_eq!(
            again.changed_order(),
            None,
            "the same page, nothing to write"
        );
    }

    #[test]
    fn the_expected_entry_is_taken_only_if_both_hashes_of_the_id_match() {
        // An entry whose id shares "a"'s 64-bit hash but not its second one, where "a" is
        // looked for first: a different id (two such ids exist, though none is known).
        let (_, key) = locate("a");
        let entry = Entry {
            hash: 1,
            key,
            check: check("a") ^ 1,
            bucket: 0,
            offset: 0,
            id_len: 0,
            len: 2,
            seen: false,
            ordered: false,
        };
        let mut index = Index {
            blobs: vec![sled::IVec::default()],
            entries: vec![entry],
            places: [(key, 0)].into_iter().collect(),
            ..Index::default()
        };
        assert!(!index.holds("a"));
        assert_eq!(index.see_unchanged("a", b"{}"), None);
        assert_eq!(index.see("a"), Seen::New);
        assert_eq!(
            index.unseen(),
            vec![String::new()],
            "the other id is not seen"
        );
    }

    #[test]
    fn an_unchanged_record_is_found_by_its_bytes_when_the_order_is_stale() {
        let (_db, tree, order) = index_and_order();
        let (records, _) = stored_records(&tree, 50);
        let mut first = Index::load(&tree).unwrap();
        for i in 0..50 {
            first.see(&format!("r-{i}"));
        }
        keep_order(&order, &first.order()).unwrap();
        // The next sweep lists them from the end: each is still found, once, by its bytes;
        // a record whose bytes differ is not.
        let mut index = Index::load_ordered(&tree, &order).unwrap();
        for i in (0..50).rev() {
            let id = format!("r-{i}");
            assert_eq!(index.see_unchanged(&id, b"{}"), None, "{id}: other bytes");
            assert_eq!(
                index.see_unchanged(&id, &records[i]),
                Some(records[i].len())
            );
            assert_eq!(index.see_unchanged(&id, &records[i]), None, "{id}: seen");
        }
        assert!(index.unseen().is_empty());
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

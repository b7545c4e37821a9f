//! Records: per dataset the latest version of each record with its content hash, the
//! content-hash index ([`super::index`]), and a bounded history of earlier versions.
//! Must never: parse a record it does not have to (a hash decides whether it changed).

use jiff::Timestamp;

use super::{Index, Store, StoreError};

pub(super) fn history_prefix(id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(id.len() + 9);
    key.extend_from_slice(id.as_bytes());
    key.push(0);
    key
}

/// The version of a record the store holds: its content hash and the JSON as returned.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    pub hash: u128,
    pub raw: sled::IVec,
    /// The JSON as the store keeps it ([`pack`]): what its history keeps when it is replaced,
    /// without compressing it again.
    pub packed: sled::IVec,
}

/// A record's JSON as the store keeps it: LZ4-compressed after a [`LZ4`] byte when that is
/// smaller, else as it is.
pub fn pack(raw: &[u8]) -> Vec<u8> {
    pack_after(&[], raw)
}

thread_local! {
    /// The compressor's hash table and output buffer, reused. Made afresh for each record
    /// (the table is 8 KiB, zeroed) and copied twice after, they were about a third of the
    /// packing: 15.2 % of a baseline's samples for 100,000 records, against 10.8 % now.
    static PACKER: std::cell::RefCell<(lz4_flex::block::CompressTable, Vec<u8>)> =
        Default::default();
}

/// The largest output buffer [`PACKER`] keeps between records: one for a rare record of
/// megabytes is let go, not held by every thread for the life of the daemon.
const PACKER_KEEPS: usize = 256 << 10;

/// `prefix`, then [`pack`] of `raw`, in one allocation of just that size.
fn pack_after(prefix: &[u8], raw: &[u8]) -> Vec<u8> {
    PACKER.with(|packer| {
        let (table, buf) = &mut *packer.borrow_mut();
        let need = lz4_flex::block::get_maximum_output_size(raw.len());
        if buf.len() < need {
            buf.resize(need, 0);
        }
        let compressed = lz4_flex::block::compress_into_with_table(raw, &mut buf[..need], table);
        let out = match compressed {
            // The layout of `compress_prepend_size`: the size, little-endian, then the block.
            Ok(n) if 1 + 4 + n < raw.len() => {
                let mut out = Vec::with_capacity(prefix.len() + 1 + 4 + n);
                out.extend_from_slice(prefix);
                out.push(LZ4);
                out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
                out.extend_from_slice(&buf[..n]);
                out
            }
            _ => [prefix, raw].concat(),
        };
        if buf.len() > PACKER_KEEPS {
            *buf = Vec::new();
        }
        out
    })
}

/// The JSON of what [`pack`] made (or of JSON stored as it is).
pub fn unpack(what: &'static str, packed: &sled::IVec) -> Result<sled::IVec, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt { what, detail };
    match packed.first() {
        Some(&LZ4) => {
            let size = packed
                .get(1..5)
                .map(|n| u32::from_le_bytes(n.try_into().expect("4 bytes")) as usize);
            if size.is_none_or(|n| n > MAX_RECORD_BYTES) {
                return Err(corrupt(format!("compressed record of {size:?} bytes")));
            }
            Ok(lz4_flex::block::decompress_size_prepended(&packed[1..])
                .map_err(|e| corrupt(e.to_string()))?
                .into())
        }
        _ => Ok(packed.clone()),
    }
}

/// After the hash, this byte says the JSON is LZ4-compressed (JSON never starts with it;
/// records stored before compression start with their JSON and read as they always did).
const LZ4: u8 = 0;
/// A compressed record that says it is bigger than this is taken as damaged.
const MAX_RECORD_BYTES: usize = 64 << 20;

impl StoredRecord {
    /// The stored form: the content hash, then the JSON, LZ4-compressed when that is smaller
    /// (a sweep writes every record of a baseline: a third of the bytes is a third of the
    /// store's pages to hold and write).
    pub(super) fn encode(hash: u128, raw: &[u8]) -> Vec<u8> {
        pack_after(&hash.to_le_bytes(), raw)
    }

    fn decode(bytes: sled::IVec) -> Result<Self, StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt {
            what: "record",
            detail,
        };
        if bytes.len() < 16 {
            return Err(corrupt(format!("{} bytes", bytes.len())));
        }
        let hash = u128::from_le_bytes(bytes[..16].try_into().expect("16 bytes"));
        let packed = bytes.subslice(16, bytes.len() - 16);
        Ok(StoredRecord {
            hash,
            raw: unpack("record", &packed)?,
            packed,
        })
    }

    pub fn json(&self) -> Result<serde_json::Value, StoreError> {
        serde_json::from_slice(&self.raw).map_err(|e| StoreError::Corrupt {
            what: "record",
            detail: e.to_string(),
        })
    }
}

/// The content hash that decides whether a record changed: of its bytes as the API sent them.
pub fn content_hash(raw: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(raw)
}

impl Store {
    pub(super) fn records_tree(&self, dataset: &str) -> Result<sled::Tree, StoreError> {
        let t = self.t()?;
        Ok(t.db.open_tree(format!("records/{dataset}"))?)
    }

    pub(super) fn index_tree(&self, dataset: &str) -> Result<sled::Tree, StoreError> {
        let t = self.t()?;
        Ok(t.db.open_tree(format!("index/{dataset}"))?)
    }

    /// The order in which the last complete sweep of `dataset` saw its ids (a hint that
    /// makes [`Store::index`] faster; see [`Index::load_ordered`]).
    pub(super) fn order_tree(&self, dataset: &str) -> Result<sled::Tree, StoreError> {
        let t = self.t()?;
        Ok(t.db.open_tree(format!("order/{dataset}"))?)
    }

    /// The content-hash index of `dataset`: every stored id with its latest hash.
    pub fn index(&self, dataset: &str) -> Result<Index, StoreError> {
        Index::load_ordered(&self.index_tree(dataset)?, &self.order_tree(dataset)?)
    }

    /// Keeps `order` ([`Index::order`]) as the order of `dataset`'s ids. Outside a sweep's
    /// transaction: an order lost in a crash only makes the next sweep's lookups slower.
    pub(super) fn write_order(&self, dataset: &str, order: &[u8]) -> Result<(), StoreError> {
        super::index::keep_order(&self.order_tree(dataset)?, order)
    }

    /// Drops every record of a dataset that has no baseline yet: what a failed or interrupted
    /// baseline streamed in. A dataset with a committed baseline is never touched.
    pub fn discard_records(&self, dataset: &str) -> Result<(), StoreError> {
        let t = self.t()?;
        if self.baseline_at(dataset)?.is_some() {
            return Ok(());
        }
        let records = self.records_tree(dataset)?;
        if records.is_empty() {
            return Ok(());
        }
        tracing::info!(
            dataset,
            records = records.len(),
            "dropping the records of a baseline that did not complete"
        );
        for tree in [
            records,
            self.index_tree(dataset)?,
            self.order_tree(dataset)?,
            self.history_tree(dataset)?,
            self.versions_tree(dataset)?,
        ] {
            tree.clear()?;
        }
        t.db.flush()?;
        Ok(())
    }

    /// Writes records outside a sweep's transaction: the baseline streams its records this
    /// way, since it announces nothing and an interrupted baseline is simply taken again. The
    /// index that makes them count as known is written with the sweep's commit.
    ///
    /// One by one, in the order they were added (the baseline adds them in id order): a
    /// `sled::Batch` applies its writes in hash-map order, and random inserts leave every
    /// leaf of the tree split and patched, a base and up to nine deltas that each later read
    /// of it pages in. In key order sled fills one leaf at a time and writes each whole.
    pub fn write_records(&self, dataset: &str, batch: RecordBatch) -> Result<(), StoreError> {
        let tree = self.records_tree(dataset)?;
        for (id, value) in batch.records {
            tree.insert(id.as_bytes(), value)?;
        }
        // Flushed batch by batch, sled holds one batch of unwritten pages at a time.
        self.t()?.db.flush()?;
        Ok(())
    }

    /// Writes buckets of `dataset`'s index outside a sweep's transaction, one at a time in
    /// bucket order ([`super::index::write_buckets`]): a baseline's, which counts for nothing
    /// until the baseline's commit.
    pub fn write_index(&self, dataset: &str, buckets: &[(u16, Vec<u8>)]) -> Result<(), StoreError> {
        super::index::write_buckets(&self.index_tree(dataset)?, buckets)
    }

    /// An unnamed scratch file in the state folder (removed when closed, or by the system
    /// if the process dies): where a baseline spools its records.
    pub fn spool_file(&self) -> Result<std::fs::File, StoreError> {
        Ok(tempfile::tempfile_in(&self.dir)?)
    }

    pub(super) fn versions_tree(&self, dataset: &str) -> Result<sled::Tree, StoreError> {
        let t = self.t()?;
        Ok(t.db.open_tree(format!("versions/{dataset}"))?)
    }

    /// How many times each record of `dataset` has changed, appeared or gone since its
    /// baseline: the occurrence a change is, which its events' ids carry (guarantee 10).
    pub fn versions(&self, dataset: &str) -> Result<Versions, StoreError> {
        Ok(Versions(self.versions_tree(dataset)?))
    }

    pub(super) fn history_tree(&self, dataset: &str) -> Result<sled::Tree, StoreError> {
        let t = self.t()?;
        Ok(t.db.open_tree(format!("history/{dataset}"))?)
    }

    /// The datasets that have records.
    pub fn datasets(&self) -> Result<Vec<String>, StoreError> {
        let t = self.t()?;
        Ok(t.db
            .tree_names()
            .iter()
            .filter_map(|n| {
                std::str::from_utf8(n)
                    .ok()?
                    .strip_prefix("records/")
                    .map(str::to_string)
            })
            .collect())
    }

    /// Every earlier version of one record, oldest first, with the time it was replaced.
    pub fn history(
        &self,
        dataset: &str,
        id: &str,
    ) -> Result<Vec<(Timestamp, serde_json::Value)>, StoreError> {
        let tree = self.history_tree(dataset)?;
        let mut out = Vec::new();
        for item in tree.scan_prefix(history_prefix(id)) {
            let (_, v) = item?;
            let corrupt = |detail: String| StoreError::Corrupt {
                what: "history",
                detail,
            };
            if v.len() < 8 {
                return Err(corrupt(format!("{} bytes", v.len())));
            }
            let millis = i64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
            let at = Timestamp::from_millisecond(millis).map_err(|e| corrupt(e.to_string()))?;
            let raw = unpack("history", &v.subslice(8, v.len() - 8))?;
            let value = serde_json::from_slice(&raw).map_err(|e| corrupt(e.to_string()))?;
            out.push((at, value));
        }
        Ok(out)
    }

    /// Keeps at most `keep` earlier versions of each of `ids`.
    pub(super) fn trim_history(
        &self,
        tree: &sled::Tree,
        ids: &[&str],
        keep: usize,
    ) -> Result<(), StoreError> {
        for id in ids {
            let keys: Vec<sled::IVec> = tree
                .scan_prefix(history_prefix(id))
                .keys()
                .collect::<Result<_, _>>()?;
            for key in keys.iter().take(keys.len().saturating_sub(keep)) {
                tree.remove(key)?;
            }
        }
        Ok(())
    }

    /// A read view of one dataset's latest records.
    pub fn records(&self, dataset: &str) -> Result<Records, StoreError> {
        Ok(Records(self.records_tree(dataset)?))
    }
}

/// Records for [`Store::write_records`], each encoded as it is added.
#[derive(Debug, Default)]
pub struct RecordBatch {
    records: Vec<(String, Vec<u8>)>,
    bytes: usize,
}

impl RecordBatch {
    pub fn add(&mut self, id: &str, hash: u128, raw: &[u8]) {
        self.bytes += raw.len();
        self.records
            .push((id.to_string(), StoredRecord::encode(hash, raw)));
    }

    /// The JSON bytes of the records added.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// A read view of one dataset's latest records.
#[derive(Debug, Clone)]
pub struct Records(sled::Tree);

impl Records {
    pub fn get(&self, id: &str) -> Result<Option<StoredRecord>, StoreError> {
        self.0
            .get(id.as_bytes())?
            .map(StoredRecord::decode)
            .transpose()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every (id, record), in id order.
    pub fn iter(&self) -> impl Iterator<Item = Result<(String, StoredRecord), StoreError>> + '_ {
        self.0.iter().map(|item| {
            let (k, v) = item?;
            let id = String::from_utf8(k.to_vec()).map_err(|e| StoreError::Corrupt {
                what: "record id",
                detail: e.to_string(),
            })?;
            Ok((id, StoredRecord::decode(v)?))
        })
    }
}

/// A read view of one dataset's change counts ([`Store::versions`]).
#[derive(Debug, Clone)]
pub struct Versions(sled::Tree);

impl Versions {
    /// The changes of `id` committed so far (0 for a record of the baseline or one never seen).
    pub fn get(&self, id: &str) -> Result<u64, StoreError> {
        Ok(self
            .0
            .get(id.as_bytes())?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of about `n` bytes that compresses as JSON does.
    fn record(n: usize, seed: usize) -> Vec<u8> {
        let mut s = String::from("{");
        let mut i = 0;
        while s.len() < n {
            s.push_str(&format!(
                "\"field{i}\":\"value {} of {seed}\",",
                i * 31 % 97
            ));
            i += 1;
        }
        s.push_str("\"end\":true}");
        s.into_bytes()
    }

    #[test]
    fn packing_keeps_the_layout_earlier_stores_hold_and_reads_back_whole() {
        // Small, large enough for the wider hash table, then small again with that table,
        // and one too short to gain from compressing.
        let raws = [
            record(1_500, 1),
            record(100_000, 2),
            record(1_500, 3),
            b"{}".to_vec(),
        ];
        for raw in &raws {
            let packed = pack(raw);
            let expected = match lz4_flex::block::compress_prepend_size(raw) {
                c if c.len() + 1 < raw.len() => [&[LZ4][..], &c].concat(),
                _ => raw.clone(),
            };
            assert_eq!(packed, expected, "{} bytes", raw.len());
            let back = unpack("record", &packed.clone().into()).unwrap();
            assert_eq!(&back[..], &raw[..]);
        }
        assert_ne!(
            pack(&raws[0]),
            raws[0],
            "a typical record is kept compressed"
        );
        assert_eq!(pack(b"{}"), b"{}", "a tiny one as it is");
        let stored = StoredRecord::decode(StoredRecord::encode(7, &raws[2]).into()).unwrap();
        assert_eq!((stored.hash, &stored.raw[..]), (7, &raws[2][..]));
    }

    #[test]
    fn the_packer_lets_go_of_a_buffer_made_for_a_record_of_megabytes() {
        let kept = || PACKER.with(|p| p.borrow().1.capacity());
        let big = record(3 << 20, 4);
        let packed = pack(&big);
        assert_eq!(&unpack("record", &packed.into()).unwrap()[..], &big[..]);
        assert!(kept() <= PACKER_KEEPS, "{} bytes kept", kept());
        pack(&record(1_500, 5));
        assert!(kept() > 0, "a typical record's buffer is kept for the next");
    }
}

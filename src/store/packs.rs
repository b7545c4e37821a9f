//! Packs: how a baseline stores its records. Each sled value holds a few consecutive records
//! (in id order, about [`PACK_BYTES`] of JSON), compressed together, under the key of its
//! last id.
//!
//! A sled write costs about the same whether it carries 1.5 KB or 8 KB: written one by one,
//! 100,000 records of a baseline took sled 3 CPU-s, in packs of five 1.5 s (`benches/sweep.rs`
//! measures the whole sweep). A record that changes later is written on its own under its
//! id in the records tree, which then shadows its copy in the pack; a removal takes it out of
//! both. So a stored record is its own entry if there is one, else its pack's.
//!
//! A pack is `[format][u16 count]`, then per record `[u16 id length][id][16-byte content
//! hash][u32 length]`, then the records' JSON one after another, LZ4-compressed as one block
//! (format [`LZ4`]) or as is (format [`PLAIN`], where compression would not make it smaller).

use super::StoreError;

/// A pack is closed before it holds more than this much JSON (unless it holds one record):
/// small enough that a sled leaf of sixteen packs stays under the size sled writes as a
/// separate file.
pub const PACK_BYTES: usize = 8 << 10;

const LZ4: u8 = 1;
const PLAIN: u8 = 2;
/// A pack that says it holds more than this is taken as damaged.
const MAX_PACK_BYTES: usize = 64 << 20;

/// One record of a pack: its id, content hash and JSON.
pub type Packed<'a> = (&'a str, u128, &'a [u8]);

/// One record's place in a pack: id, content hash, where its JSON starts and its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub hash: u128,
    pub at: usize,
    pub len: usize,
}

/// Splits records (sorted by id) into packs: (key, value) pairs, the key being the last id.
pub fn pack_all<'a>(records: impl IntoIterator<Item = Packed<'a>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut current: Vec<Packed<'a>> = Vec::new();
    let mut bytes = 0;
    for record in records {
        if !current.is_empty() && bytes + record.2.len() > PACK_BYTES {
            out.push(encode(&current));
            (current, bytes) = (Vec::new(), 0);
        }
        bytes += record.2.len();
        current.push(record);
    }
    if !current.is_empty() {
        out.push(encode(&current));
    }
    out
}

/// One pack of `records` (sorted by id, at least one): its key and value.
pub fn encode(records: &[Packed<'_>]) -> (Vec<u8>, Vec<u8>) {
    let key = records
        .last()
        .map(|r| r.0.as_bytes().to_vec())
        .unwrap_or_default();
    let count = u16::try_from(records.len()).expect("a pack holds fewer than 65536 records");
    let mut body = Vec::with_capacity(records.iter().map(|r| r.2.len()).sum());
    for r in records {
        body.extend_from_slice(r.2);
    }
    let compressed = lz4_flex::block::compress_prepend_size(&body);
    let mut v = Vec::with_capacity(3 + records.len() * 60 + compressed.len().min(body.len()));
    let plain = compressed.len() >= body.len();
    v.push(if plain { PLAIN } else { LZ4 });
    v.extend_from_slice(&count.to_le_bytes());
    for (id, hash, raw) in records {
        let id_len = u16::try_from(id.len()).expect("an id shorter than 64 KiB");
        v.extend_from_slice(&id_len.to_le_bytes());
        v.extend_from_slice(id.as_bytes());
        v.extend_from_slice(&hash.to_le_bytes());
        v.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    }
    v.extend_from_slice(if plain { &body } else { &compressed });
    (key, v)
}

fn corrupt(detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what: "record pack",
        detail: detail.into(),
    }
}

/// The records of a pack, and where its JSON starts in `pack`; reads no JSON.
pub fn entries(pack: &[u8]) -> Result<(Vec<Entry>, usize), StoreError> {
    let take = |at: usize, n: usize| {
        pack.get(at..at + n)
            .ok_or_else(|| corrupt(format!("{} bytes, cut short", pack.len())))
    };
    let format = *take(0, 1)?.first().expect("1 byte");
    if format != LZ4 && format != PLAIN {
        return Err(corrupt(format!("format {format}")));
    }
    let count = u16::from_le_bytes(take(1, 2)?.try_into().expect("2 bytes")) as usize;
    let (mut at, mut offset) = (3, 0);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let id_len = u16::from_le_bytes(take(at, 2)?.try_into().expect("2 bytes")) as usize;
        let id = std::str::from_utf8(take(at + 2, id_len)?).map_err(|e| corrupt(e.to_string()))?;
        at += 2 + id_len;
        let hash = u128::from_le_bytes(take(at, 16)?.try_into().expect("16 bytes"));
        let len = u32::from_le_bytes(take(at + 16, 4)?.try_into().expect("4 bytes")) as usize;
        at += 20;
        out.push(Entry {
            id: id.to_string(),
            hash,
            at: offset,
            len,
        });
        offset += len;
    }
    Ok((out, at))
}

/// The JSON of every record of a pack, one after another (see [`entries`] for where each is).
pub fn body(pack: &[u8], from: usize, entries: &[Entry]) -> Result<Vec<u8>, StoreError> {
    let total: usize = entries.iter().map(|e| e.len).sum();
    let rest = pack.get(from..).unwrap_or_default();
    let body = if pack.first() == Some(&PLAIN) {
        rest.to_vec()
    } else {
        let size = rest
            .get(..4)
            .map(|n| u32::from_le_bytes(n.try_into().expect("4 bytes")) as usize);
        if size.is_none_or(|n| n > MAX_PACK_BYTES) {
            return Err(corrupt(format!("compressed pack of {size:?} bytes")));
        }
        lz4_flex::block::decompress_size_prepended(rest).map_err(|e| corrupt(e.to_string()))?
    };
    if body.len() != total {
        return Err(corrupt(format!(
            "{} bytes of records where its list says {total}",
            body.len()
        )));
    }
    Ok(body)
}

/// Every record of a pack: (id, content hash, JSON).
pub fn decode(pack: &[u8]) -> Result<Vec<(String, u128, Vec<u8>)>, StoreError> {
    let (entries, from) = entries(pack)?;
    let body = body(pack, from, &entries)?;
    Ok(entries
        .into_iter()
        .map(|e| {
            let raw = body[e.at..e.at + e.len].to_vec();
            (e.id, e.hash, raw)
        })
        .collect())
}

/// The pack `pack` without the records `gone`: its new value, or `None` if none is left.
/// Its key (the last id) may then name a record it no longer holds, which still places it.
pub fn without(pack: &[u8], gone: &[&str]) -> Result<Option<Vec<u8>>, StoreError> {
    let kept: Vec<(String, u128, Vec<u8>)> = decode(pack)?
        .into_iter()
        .filter(|(id, ..)| !gone.contains(&id.as_str()))
        .collect();
    if kept.is_empty() {
        return Ok(None);
    }
    let packed: Vec<Packed<'_>> = kept
        .iter()
        .map(|(id, hash, raw)| (id.as_str(), *hash, raw.as_slice()))
        .collect();
    Ok(Some(encode(&packed).1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize, size: usize) -> Vec<(String, u128, Vec<u8>)> {
        (0..n)
            .map(|i| {
                let raw = format!("{{\"id\":\"r{i:05}\",\"pad\":\"{}\"}}", "x".repeat(size));
                (format!("r{i:05}"), i as u128 * 7 + 1, raw.into_bytes())
            })
            .collect()
    }

    fn borrowed(r: &[(String, u128, Vec<u8>)]) -> Vec<Packed<'_>> {
        r.iter()
            .map(|(id, h, raw)| (id.as_str(), *h, raw.as_slice()))
            .collect()
    }

    #[test]
    fn packs_hold_every_record_in_order_under_their_last_id() {
        let all = records(100, 1500);
        let packs = pack_all(borrowed(&all));
        assert!(packs.len() >= 100 * 1500 / PACK_BYTES, "{}", packs.len());
        let mut back = Vec::new();
        for (key, value) in &packs {
            let held = decode(value).unwrap();
            assert_eq!(key, held.last().unwrap().0.as_bytes());
            assert!(held.len() == 1 || held.iter().map(|r| r.2.len()).sum::<usize>() <= PACK_BYTES);
            back.extend(held);
        }
        assert_eq!(back, all);
        // A record bigger than a pack gets one of its own; what does not compress is kept plain.
        let big = records(3, 3 * PACK_BYTES);
        assert_eq!(pack_all(borrowed(&big)).len(), 3);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..2000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let (_, plain) = encode(&[("n", 1, &noise)]);
        assert_eq!(plain[0], PLAIN);
        assert_eq!(decode(&plain).unwrap()[0].2, noise);
    }

    #[test]
    fn a_removed_record_leaves_its_pack_and_an_emptied_pack_goes() {
        let all = records(4, 100);
        let (_, pack) = encode(&borrowed(&all));
        let rest = without(&pack, &["r00001", "r00003"]).unwrap().unwrap();
        let ids: Vec<String> = decode(&rest).unwrap().into_iter().map(|r| r.0).collect();
        assert_eq!(ids, ["r00000", "r00002"]);
        assert_eq!(without(&rest, &["r00000", "r00002"]).unwrap(), None);
    }

    #[test]
    fn a_damaged_pack_is_an_error_not_a_panic() {
        let all = records(5, 300);
        let (_, pack) = encode(&borrowed(&all));
        for cut in 0..pack.len() {
            assert!(decode(&pack[..cut]).is_err(), "cut at {cut}");
        }
        let mut wrong = pack.clone();
        wrong[0] = 9;
        assert!(decode(&wrong).is_err());
        // A list that claims more JSON than the pack holds.
        let mut longer = pack.clone();
        let first_len_at = 3 + 2 + 6 + 16;
        longer[first_len_at] = longer[first_len_at].wrapping_add(1);
        assert!(decode(&longer).is_err());
    }
}

//! `cargo bench --bench sled_values`: what sled alone costs a baseline, by how many records
//! share one value. 100,000 records of 1,140 incompressible bytes (a 1.5 KB referral after
//! LZ4) are written in id order, in batches of `BASELINE_BATCH_BYTES` each flushed, as the
//! first sweep writes them, with the store's cache size; once one record per value (what the
//! store does) and once five per value. Each layout runs in a process of its own so that its
//! CPU time is its own. The last line is `sled_values records=… one_cpu_s=… five_cpu_s=…
//! ratio=…`.

mod common;

use std::process::Command;

use rand::{Rng, SeedableRng};

const RECORDS: usize = 100_000;

fn main() {
    if let Ok(per) = std::env::var("PW_BENCH_PER_VALUE") {
        let dir = tempfile::tempdir().unwrap();
        println!("{:.3}", write(dir.path(), per.parse().unwrap()));
        return;
    }
    let run = |per: usize| -> f64 {
        common::stdout_of(
            Command::new(std::env::current_exe().unwrap())
                .env("PW_BENCH_PER_VALUE", per.to_string()),
        )
        .parse()
        .unwrap()
    };
    let (one, five) = (run(1), run(5));
    println!(
        "sled_values records={RECORDS} one_cpu_s={one:.3} five_cpu_s={five:.3} ratio={:.2}",
        one / five
    );
}

/// Writes the records `per` to a value; returns the CPU seconds of the writes and flushes.
fn write(dir: &std::path::Path, per: usize) -> f64 {
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(partnerwatch::store::CACHE_BYTES)
        .flush_every_ms(None)
        .open()
        .unwrap();
    let tree = db.open_tree("records/referrals").unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let mut ids: Vec<String> = (0..RECORDS)
        .map(|_| format!("{:032x}", rng.random::<u128>()))
        .collect();
    ids.sort();
    let record: Vec<u8> = (0..1140).map(|_| rng.random()).collect();
    let start = common::rusage().0;
    let (mut batch, mut bytes) = (sled::Batch::default(), 0);
    for chunk in ids.chunks(per) {
        let value = record.repeat(chunk.len());
        bytes += value.len();
        batch.insert(chunk[chunk.len() - 1].as_bytes(), value);
        if bytes >= partnerwatch::detect::sweep::BASELINE_BATCH_BYTES {
            tree.apply_batch(std::mem::take(&mut batch)).unwrap();
            db.flush().unwrap();
            bytes = 0;
        }
    }
    tree.apply_batch(batch).unwrap();
    db.flush().unwrap();
    common::rusage().0 - start
}

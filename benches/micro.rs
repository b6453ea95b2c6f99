//! Criterion micro-benchmarks of the sealed-block envelope, beside its raw parts.
//!
//! ```text
//! cargo bench --bench micro
//! cargo bench --bench micro -- envelope/4096     # one block size
//! ```
//!
//! For each block size (1, 4, 16 and 64 KiB of bytes that compress to about half, as
//! `db_bench`'s default values do) it measures `FileCipher::seal` + `open`, each alone, and the
//! raw operations the envelope is built from: `lz4_flex` block compression, AES-256-GCM and
//! ChaCha20-Poly1305 encryption of the same bytes, and lz4 followed by each cipher, so one can
//! see how close the envelope is to the sum of its parts. The ciphers are measured twice:
//! `ring-*` is the backend sealdb seals with (src/seal/aead.rs); the unprefixed rows are the
//! portable `aes-gcm` and `chacha20poly1305` crates it used before, kept for the comparison.
//!
//! Only the unencrypted envelope (`FileCipher::plain`, crc32 in place of the tag) is measured
//! through sealdb's API: a keyed `FileCipher` can only be made inside the crate
//! (`FileCipher::new` is `pub(crate)`). Benchmarking the AES-256-GCM and ChaCha20-Poly1305 envelopes needs a public
//! constructor (see `docs/benchmarks.md`); until then compare `seal+open/plain` with
//! `raw/lz4+crc32` and read the cipher's cost off `raw/lz4+aes256gcm` and friends.

use std::hint::black_box;
use std::time::Duration;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use chacha20poly1305::ChaCha20Poly1305;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sealdb::seal::{BlockKind, FileCipher};

const SIZES: [usize; 4] = [1 << 10, 4 << 10, 16 << 10, 64 << 10];

/// `len` bytes that LZ4 compresses to about half: 100-byte pieces whose first 50 bytes are random
/// printable characters and whose last 50 repeat them (as `db_bench`'s value generator).
fn block_bytes(len: usize) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(301);
    let mut data = Vec::with_capacity(len + 100);
    while data.len() < len {
        let half: Vec<u8> = (0..50).map(|_| b' ' + rng.gen_range(0..95u8)).collect();
        data.extend_from_slice(&half);
        data.extend_from_slice(&half);
    }
    data.truncate(len);
    data
}

fn envelope(c: &mut Criterion) {
    // Associated data the size of the envelope's: 32 header bytes, file number and offset.
    let ad = [7u8; 48];
    let nonce = [3u8; 12];
    let aes = Aes256Gcm::new(&[1u8; 32].into());
    let chacha = ChaCha20Poly1305::new(&[2u8; 32].into());
    let plain_cipher = FileCipher::plain(1);

    for size in SIZES {
        let data = block_bytes(size);
        let mut group = c.benchmark_group(format!("envelope/{size}"));
        group.throughput(Throughput::Bytes(size as u64));

        let mut out = Vec::with_capacity(size + 128);
        group.bench_function(BenchmarkId::new("seal+open", "plain"), |b| {
            b.iter(|| {
                out.clear();
                plain_cipher.seal(BlockKind::Data, 4096, 1, true, black_box(&data), &mut out);
                let opened = plain_cipher.open(BlockKind::Data, 4096, &out).expect("opens");
                black_box(opened);
            });
        });
        group.bench_function(BenchmarkId::new("seal", "plain"), |b| {
            b.iter(|| {
                out.clear();
                plain_cipher.seal(BlockKind::Data, 4096, 1, true, black_box(&data), &mut out);
                black_box(&out);
            });
        });
        let mut sealed = Vec::new();
        plain_cipher.seal(BlockKind::Data, 4096, 1, true, &data, &mut sealed);
        group.bench_function(BenchmarkId::new("open", "plain"), |b| {
            b.iter(|| black_box(plain_cipher.open(BlockKind::Data, 4096, black_box(&sealed))));
        });

        let mut comp = vec![0u8; lz4_flex::block::get_maximum_output_size(size)];
        group.bench_function(BenchmarkId::new("raw", "lz4-compress"), |b| {
            b.iter(|| black_box(lz4_flex::block::compress_into(black_box(&data), &mut comp)));
        });
        let n = lz4_flex::block::compress_into(&data, &mut comp).expect("fits");
        let mut decomp = vec![0u8; size];
        group.bench_function(BenchmarkId::new("raw", "lz4-decompress"), |b| {
            b.iter(|| {
                black_box(lz4_flex::block::decompress_into(black_box(&comp[..n]), &mut decomp))
            });
        });

        // The same nonce for every encryption: harmless in a benchmark, never done in sealdb.
        let mut buf = Vec::with_capacity(size + 16);
        group.bench_function(BenchmarkId::new("raw", "aes256gcm-encrypt"), |b| {
            b.iter(|| {
                buf.clear();
                buf.extend_from_slice(black_box(&data));
                black_box(aes.encrypt_inout_detached(
                    (&nonce).into(),
                    &ad,
                    buf.as_mut_slice().into(),
                ))
            });
        });
        group.bench_function(BenchmarkId::new("raw", "chacha20poly1305-encrypt"), |b| {
            b.iter(|| {
                buf.clear();
                buf.extend_from_slice(black_box(&data));
                black_box(chacha.encrypt_inout_detached(
                    (&nonce).into(),
                    &ad,
                    buf.as_mut_slice().into(),
                ))
            });
        });

        let ring_aes = ring::aead::LessSafeKey::new(
            ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &[1u8; 32]).expect("key"),
        );
        let ring_chacha = ring::aead::LessSafeKey::new(
            ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &[2u8; 32]).expect("key"),
        );
        for (name, key) in
            [("ring-aes256gcm-encrypt", &ring_aes), ("ring-chacha20poly1305-encrypt", &ring_chacha)]
        {
            group.bench_function(BenchmarkId::new("raw", name), |b| {
                b.iter(|| {
                    buf.clear();
                    buf.extend_from_slice(black_box(&data));
                    black_box(key.seal_in_place_separate_tag(
                        ring::aead::Nonce::assume_unique_for_key(nonce),
                        ring::aead::Aad::from(&ad),
                        &mut buf,
                    ))
                });
            });
        }

        // The envelope's work without its framing: compress, then tag or checksum.
        let mut work = vec![0u8; lz4_flex::block::get_maximum_output_size(size)];
        group.bench_function(BenchmarkId::new("raw", "lz4+crc32"), |b| {
            b.iter(|| {
                let n = lz4_flex::block::compress_into(black_box(&data), &mut work).expect("fits");
                black_box(crc32fast::hash(&work[..n]))
            });
        });
        group.bench_function(BenchmarkId::new("raw", "lz4+aes256gcm"), |b| {
            b.iter(|| {
                let n = lz4_flex::block::compress_into(black_box(&data), &mut work).expect("fits");
                black_box(aes.encrypt_inout_detached((&nonce).into(), &ad, (&mut work[..n]).into()))
            });
        });
        group.bench_function(BenchmarkId::new("raw", "lz4+chacha20poly1305"), |b| {
            b.iter(|| {
                let n = lz4_flex::block::compress_into(black_box(&data), &mut work).expect("fits");
                black_box(chacha.encrypt_inout_detached(
                    (&nonce).into(),
                    &ad,
                    (&mut work[..n]).into(),
                ))
            });
        });
        group.finish();
    }
}

fn config() -> Criterion {
    // A shared 2-core machine: fewer, longer samples finish in about two minutes in all.
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = envelope
}
criterion_main!(benches);

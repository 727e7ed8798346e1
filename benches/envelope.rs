//! Micro-benchmarks (criterion) of the hot paths under `etl raw` and `etl standard`:
//!
//! - `frame`: encoding Kafka messages as `etl-frames/4` plaintext (what `etl raw` does per message)
//! - `zlib-5 libdeflate` / `zlib-5 flate2`: compression alone on that plaintext at etl's default
//!   level, with the library etl uses and with zlib-rs (the "zlib alone" of the raw target)
//! - `aes-256-gcm`: the cipher alone on the compressed bytes (256 KiB chunks, as the envelope does)
//! - `seal`: the whole write path of one object (libdeflate + AES-GCM + RSA-OAEP key wrap)
//! - `open_plaintext + frames`: the read path of `etl standard` (unwrap, decrypt, inflate, then
//!   each frame decoded and checked against the object key as it is read)
//! - `breadcrumb::parse`: one payload → typed row, numbers as JSON numbers and as strings
//!
//! Data: the real sample in data/ replicated with GPS jitter, odometer offsets and new ids (like
//! scripts/gen_breadcrumbs.py), `ETL_BENCH_MIB` MiB of payloads (default 16); every third replica
//! has its numbers as strings. Single-threaded figures (etl runs one such pipeline per core).
//!
//!   cargo bench --bench envelope                       # criterion: throughput per step
//!   ETL_BENCH_MIB=64 cargo bench --bench envelope -- seal
//! Under `cargo test --all-targets` (no `--bench` argument) criterion runs each step once, on
//! 1 MiB, as a smoke test.

use std::hint::black_box;
use std::io::Write;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::Value;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn jitter(&mut self, span: i64) -> i64 {
        (self.next() % (2 * span as u64 + 1)) as i64 - span
    }
}

/// Breadcrumb payloads (and their keys) totalling at least `bytes`.
fn payloads(bytes: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/VladChevdar_DataTransport_bcsample_2022-12-12.json");
    let base: Vec<Value> = serde_json::from_slice(&std::fs::read(&path).expect("sample data")).expect("sample JSON");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut out, mut total, mut replica) = (Vec::new(), 0usize, 0i64);
    while total < bytes {
        let strings = replica % 3 == 2;
        let m_off = (rng.next() % 5000) as i64;
        for rec in &base {
            let Value::Object(o) = rec else { continue };
            let mut o = o.clone();
            let int = |o: &serde_json::Map<String, Value>, k: &str| o.get(k).and_then(Value::as_i64);
            if let Some(t) = int(&o, "EVENT_NO_TRIP") {
                o.insert("EVENT_NO_TRIP".into(), (t + replica * 100_000).into());
            }
            if let Some(t) = int(&o, "EVENT_NO_STOP") {
                o.insert("EVENT_NO_STOP".into(), (t + replica * 100_000).into());
            }
            if let Some(v) = int(&o, "VEHICLE_ID") {
                o.insert("VEHICLE_ID".into(), (v + replica * 10).into());
            }
            if let Some(m) = int(&o, "METERS") {
                o.insert("METERS".into(), (m + m_off).into());
            }
            for k in ["GPS_LATITUDE", "GPS_LONGITUDE"] {
                if let Some(x) = o.get(k).and_then(Value::as_f64) {
                    let u = (x * 1e6).round() as i64 + rng.jitter(25);
                    o.insert(k.into(), (u as f64 / 1e6).into());
                }
            }
            if strings {
                for v in o.values_mut() {
                    match v {
                        Value::Number(n) => *v = Value::String(n.to_string()),
                        Value::Null => *v = Value::String(String::new()),
                        _ => {}
                    }
                }
            }
            let key = match o.get("VEHICLE_ID") {
                Some(Value::String(s)) => s.clone().into_bytes(),
                Some(v) => v.to_string().into_bytes(),
                None => Vec::new(),
            };
            let p = serde_json::to_vec(&Value::Object(o)).expect("serialize");
            total += p.len();
            out.push((key, p));
        }
        replica += 1;
    }
    out
}

/// etl's default zlib level.
const LEVEL: u32 = 5;

fn frame_all(msgs: &[(Vec<u8>, Vec<u8>)], out: &mut Vec<u8>) -> usize {
    out.clear();
    let mut enc = etl::frames::Encoder::default();
    for (i, (k, p)) in msgs.iter().enumerate() {
        enc.encode(out, &etl::frames::Frame { partition: 0, offset: i as i64, timestamp: Some(1_676_275_200_000 + i as i64), key: Some(k), payload: Some(p) });
    }
    out.len()
}

fn benches(c: &mut Criterion) {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let mib = std::env::var("ETL_BENCH_MIB").ok().and_then(|v| v.parse::<usize>().ok()).unwrap_or(if bench_mode { 16 } else { 1 });
    let msgs = payloads(mib << 20);
    let payload_bytes: u64 = msgs.iter().map(|(k, p)| (k.len() + p.len()) as u64).sum();
    let key = etl::keys::generate(if bench_mode { 3072 } else { 2048 }).expect("RSA key");
    let public = key.to_public_key();
    let mut plain = Vec::new();
    frame_all(&msgs, &mut plain);
    let sealed = etl::envelope::seal_bytes(&plain, &public, LEVEL, etl::frames::CONTENT).expect("seal");
    let compressed = {
        let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(LEVEL as i32).expect("level"));
        let mut out = vec![0u8; c.zlib_compress_bound(plain.len())];
        let n = c.zlib_compress(&plain, &mut out).expect("compress");
        out.truncate(n);
        out
    };
    eprintln!(
        "envelope bench: {} messages, {:.1} MB of payloads, plaintext +{:.0}% framing, zlib-{LEVEL} ratio {:.2}",
        msgs.len(),
        payload_bytes as f64 / 1e6,
        (plain.len() as f64 / payload_bytes as f64 - 1.0) * 100.0,
        plain.len() as f64 / compressed.len().max(1) as f64
    );

    let mut g = c.benchmark_group("raw");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(payload_bytes));
    let mut buf = Vec::with_capacity(plain.len());
    g.bench_function("frame", |b| b.iter(|| frame_all(black_box(&msgs), &mut buf)));
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.bench_function("zlib-5 libdeflate", |b| {
        let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(LEVEL as i32).expect("level"));
        let mut out = vec![0u8; c.zlib_compress_bound(plain.len())];
        b.iter(|| c.zlib_compress(black_box(&plain), &mut out).expect("compress"))
    });
    g.bench_function("zlib-5 flate2", |b| {
        b.iter(|| {
            let mut e = flate2::write::ZlibEncoder::new(Vec::with_capacity(plain.len() / 8), flate2::Compression::new(LEVEL));
            e.write_all(black_box(&plain)).expect("zlib");
            e.finish().expect("zlib").len()
        })
    });
    g.bench_function("seal", |b| b.iter(|| etl::envelope::seal_bytes(black_box(&plain), &public, LEVEL, etl::frames::CONTENT).expect("seal").bytes.len()));
    g.throughput(Throughput::Bytes(compressed.len() as u64));
    let cipher = Aes256Gcm::new_from_slice(&[7u8; 32]).expect("key");
    let mut enc = compressed.clone();
    g.bench_function("aes-256-gcm", |b| {
        b.iter(|| {
            let mut tags = 0usize;
            for (i, chunk) in enc.chunks_mut(etl::envelope::DEFAULT_CHUNK_SIZE).enumerate() {
                let mut nonce = [0u8; 12];
                nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
                tags += cipher.encrypt_in_place_detached(Nonce::from_slice(&nonce), b"", chunk).expect("encrypt").len();
            }
            tags
        })
    });
    g.finish();

    let mut g = c.benchmark_group("standard");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.bench_function("open_plaintext + frames", |b| {
        b.iter(|| {
            let o = etl::verify::open_plaintext("raw/bench/partition=0/x.frames.zz.enc", black_box(&sealed.bytes), &key).expect("open");
            o.frames().map(|f| f.expect("frame").offset).count()
        })
    });
    g.throughput(Throughput::Bytes(payload_bytes));
    g.bench_function("breadcrumb::parse", |b| {
        b.iter(|| {
            let ok = msgs.iter().filter(|(_, p)| etl::breadcrumb::parse(black_box(p)).is_ok()).count();
            assert!(ok * 10 >= msgs.len() * 9, "most sample payloads parse");
            ok
        })
    });
    g.finish();
}

criterion_group!(envelope, benches);
criterion_main!(envelope);

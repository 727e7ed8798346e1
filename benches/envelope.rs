//! Micro-benchmarks of the hot paths under `etl raw` and `etl standard` (std::time, no harness):
//!
//! - `frame`: encoding Kafka messages as `etl-frames/1` plaintext
//! - `zlib-6`: flate2 (zlib-rs) alone on that plaintext, `aes-256-gcm`: the cipher alone on the
//!   compressed bytes (256 KiB chunks, as the envelope does)
//! - `seal_bytes`: the whole write path (zlib + AES-GCM + RSA-OAEP key wrap), `etl::envelope::seal_bytes`
//! - `open_object`: the read path of `etl standard` (unwrap, decrypt, inflate, split frames)
//! - `breadcrumb::parse`: one payload → typed row, numbers as JSON numbers and as strings
//!
//! Data: the real sample in data/ replicated with GPS jitter, odometer offsets and new ids (like
//! scripts/gen_breadcrumbs.py), about 64 MiB of payloads; every third replica has its numbers
//! as strings. Single-threaded figures (etl raw runs one such pipeline per partition/core).
//!
//!   cargo bench --bench envelope                 # full: ~64 MiB, 5 iterations, median/min/max
//!   cargo bench --bench envelope -- --mib 16 --iters 3 --json
//! Under `cargo test --all-targets` (no `--bench` argument) it runs once on 1 MiB as a smoke test.

use std::hint::black_box;
use std::io::Write;
use std::time::Instant;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
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

struct Stats {
    name: &'static str,
    bytes: u64,
    items: u64,
    secs: Vec<f64>,
}

impl Stats {
    fn line(&mut self) -> String {
        self.secs.sort_by(|a, b| a.total_cmp(b));
        let med = self.secs[self.secs.len() / 2];
        let (min, max) = (self.secs[0], self.secs[self.secs.len() - 1]);
        let mbs = |s: f64| self.bytes as f64 / 1e6 / s;
        let mut l = format!("{:<22} {:>9.1} MB/s (min {:>7.1}, max {:>7.1})  {:>8.3} s median", self.name, mbs(med), mbs(max), mbs(min), med);
        if self.items > 0 {
            l.push_str(&format!("  {:>10.0} items/s", self.items as f64 / med));
        }
        l
    }
    fn json(&self) -> String {
        let med = self.secs[self.secs.len() / 2];
        format!(
            "{{\"name\":\"{}\",\"bytes\":{},\"items\":{},\"median_s\":{:.6},\"min_s\":{:.6},\"max_s\":{:.6},\"MB_per_s\":{:.2}}}",
            self.name,
            self.bytes,
            self.items,
            med,
            self.secs[0],
            self.secs[self.secs.len() - 1],
            self.bytes as f64 / 1e6 / med
        )
    }
}

fn time<T>(iters: usize, mut f: impl FnMut() -> T) -> Vec<f64> {
    (0..iters)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed().as_secs_f64()
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench_mode = args.iter().any(|a| a == "--bench");
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse::<usize>().ok());
    let mib = arg("--mib").unwrap_or(if bench_mode { 64 } else { 1 });
    let iters = arg("--iters").unwrap_or(if bench_mode { 5 } else { 1 }).max(1);
    let json = args.iter().any(|a| a == "--json");
    let level = arg("--level").unwrap_or(6) as u32;

    let msgs = payloads(mib << 20);
    let payload_bytes: u64 = msgs.iter().map(|(k, p)| (k.len() + p.len()) as u64).sum();
    let n = msgs.len() as u64;
    let key = etl::keys::generate(if bench_mode { 3072 } else { 2048 }).expect("RSA key");
    let public = key.to_public_key();
    eprintln!("envelope bench: {n} messages, {:.1} MB of payloads, zlib level {level}, {iters} iterations", payload_bytes as f64 / 1e6);

    let mut results = Vec::new();

    // Framing.
    let mut plain = Vec::new();
    let frame_all = |out: &mut Vec<u8>| {
        out.clear();
        for (i, (k, p)) in msgs.iter().enumerate() {
            etl::frames::encode(out, &etl::frames::Frame { partition: 0, offset: i as i64, timestamp: Some(1_676_275_200_000 + i as i64), key: Some(k), payload: p });
        }
        out.len()
    };
    let secs = time(iters, || frame_all(&mut plain));
    results.push(Stats { name: "frame", bytes: payload_bytes, items: n, secs });
    let plain_bytes = plain.len() as u64;

    // zlib alone.
    let mut compressed = Vec::new();
    let secs = time(iters, || {
        let mut e = flate2::write::ZlibEncoder::new(Vec::with_capacity(plain.len() / 8), flate2::Compression::new(level));
        e.write_all(&plain).expect("zlib");
        compressed = e.finish().expect("zlib");
        compressed.len()
    });
    results.push(Stats { name: "zlib (plaintext)", bytes: plain_bytes, items: 0, secs });

    // AES-256-GCM alone on the compressed bytes, 256 KiB chunks.
    let cipher = Aes256Gcm::new_from_slice(&[7u8; 32]).expect("key");
    let mut buf = compressed.clone();
    let comp_bytes = compressed.len() as u64;
    let secs = time(iters, || {
        let mut tags = 0usize;
        for (i, chunk) in buf.chunks_mut(etl::envelope::DEFAULT_CHUNK_SIZE).enumerate() {
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let tag = cipher.encrypt_in_place_detached(Nonce::from_slice(&nonce), b"", chunk).expect("encrypt");
            tags += tag.len();
        }
        tags
    });
    results.push(Stats { name: "aes-256-gcm (zz)", bytes: comp_bytes, items: 0, secs });

    // The whole seal path, on plaintext (as etl raw does per object).
    let mut sealed = Vec::new();
    let secs = time(iters, || {
        let s = etl::envelope::seal_bytes(&plain, &public, level, etl::frames::CONTENT).expect("seal");
        sealed = s.bytes;
        sealed.len()
    });
    results.push(Stats { name: "seal_bytes (plaintext)", bytes: plain_bytes, items: n, secs });
    eprintln!(
        "  plaintext {:.1} MB (payloads {:.1} MB, framing +{:.0}%), zlib ratio {:.2}, sealed {:.1} MB",
        plain_bytes as f64 / 1e6,
        payload_bytes as f64 / 1e6,
        (plain_bytes as f64 / payload_bytes as f64 - 1.0) * 100.0,
        plain_bytes as f64 / comp_bytes.max(1) as f64,
        sealed.len() as f64 / 1e6
    );

    // Read path: open a sealed object (RSA unwrap, AES-GCM, inflate, split frames).
    let secs = time(iters, || {
        let o = etl::verify::open_object("raw/bench/partition=0/x.frames.zz.enc", &sealed, &key).expect("open");
        o.frames.len()
    });
    results.push(Stats { name: "open_object (plain)", bytes: plain_bytes, items: n, secs });

    // Parsing.
    let secs = time(iters, || {
        let mut ok = 0usize;
        for (_, p) in &msgs {
            if etl::breadcrumb::parse(p).is_ok() {
                ok += 1;
            }
        }
        assert!(ok * 10 >= msgs.len() * 9, "most sample payloads parse");
        ok
    });
    results.push(Stats { name: "breadcrumb::parse", bytes: payload_bytes, items: n, secs });

    for r in &mut results {
        println!("{}", r.line());
    }
    if json {
        println!("[{}]", results.iter().map(Stats::json).collect::<Vec<_>>().join(","));
    }
}

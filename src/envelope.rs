//! The raw-object envelope: zlib-compressed plaintext, encrypted in chunks with a fresh
//! AES-256-GCM data key that is wrapped with the lake's RSA public key (RSA-OAEP, SHA-256).
//!
//! ```text
//!  offset  size  field
//!  0       4     magic "ETLE"
//!  4       1     format version (1)
//!  5       4     header length H (u32, big endian)
//!  9       H     header: JSON {key_id, wrapped_key (base64), nonce_prefix (base64),
//!                              chunk_size, compression, content}
//!  9+H     ...   chunks: AES-256-GCM(ciphertext || 16-byte tag) of `chunk_size` plaintext
//!                bytes each; the last chunk holds 1..=chunk_size bytes (0 only when the
//!                whole plaintext is empty)
//! ```
//!
//! Chunk `i` is sealed with nonce `nonce_prefix(7) || i (u32 BE) || last_flag(1)` (the STREAM
//! construction) and with the whole preamble (bytes `0..9+H`) as associated data, so a flipped
//! header byte, reordered chunks, a dropped chunk or a truncated object all fail to decrypt.
//! Everything here is synchronous and works on `std::io::Write`; callers decide where bytes go.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use rand::RngCore;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};

use crate::keys::key_id;

/// Magic bytes at the start of every envelope.
pub const MAGIC: &[u8; 4] = b"ETLE";
/// Current format version.
pub const VERSION: u8 = 1;
/// Default plaintext bytes per encrypted chunk.
pub const DEFAULT_CHUNK_SIZE: usize = 256 * 1024;
const TAG_LEN: usize = 16;
const PREAMBLE_FIXED: usize = 9;
const MAX_HEADER: usize = 64 * 1024;

/// Errors of the envelope format.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Not an envelope at all, or one from a newer version.
    #[error("not an etl envelope: {0}")]
    Format(String),
    /// Object was sealed for a different key pair.
    #[error("object was encrypted for key {object_key_id}, but the private key given is {given_key_id}")]
    WrongKey {
        /// Key id recorded in the object.
        object_key_id: String,
        /// Key id of the private key supplied.
        given_key_id: String,
    },
    /// The data key could not be unwrapped (corrupt or wrong key).
    #[error("cannot unwrap the data key (corrupted header or wrong private key)")]
    Unwrap,
    /// A chunk failed authentication.
    #[error("authentication failed in chunk {chunk} (object tampered with or truncated)")]
    Tampered {
        /// Index of the chunk that failed.
        chunk: u32,
    },
    /// The compressed stream inside is corrupt.
    #[error("decompression failed: {0}")]
    Decompress(io::Error),
    /// RSA or AES failure while sealing.
    #[error("encryption failed: {0}")]
    Seal(String),
    /// I/O of the underlying writer.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The JSON header stored in clear (but authenticated) at the start of every object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Header {
    /// Fingerprint of the RSA public key the data key is wrapped for.
    pub key_id: String,
    /// The AES-256 data key, RSA-OAEP(SHA-256) encrypted, base64.
    pub wrapped_key: String,
    /// 7 random bytes, base64; the per-chunk nonce prefix.
    pub nonce_prefix: String,
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
    /// Compression applied before encryption ("zlib").
    pub compression: String,
    /// What the plaintext is ("etl-frames/4").
    pub content: String,
}

fn nonce(prefix: &[u8; 7], counter: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// A `Write` sink that encrypts everything written to it into the envelope format.
/// Call [`EnvelopeWriter::finish`] to seal the last chunk; dropping without it leaves an
/// object that will not authenticate (by design).
pub struct EnvelopeWriter<W: Write> {
    out: W,
    cipher: Aes256Gcm,
    preamble: Vec<u8>,
    prefix: [u8; 7],
    chunk_size: usize,
    buf: Vec<u8>,
    counter: u32,
    written: u64,
}

impl<W: Write> EnvelopeWriter<W> {
    /// Starts an envelope for `public_key`: draws a fresh data key and writes the preamble.
    pub fn new(mut out: W, public_key: &RsaPublicKey, content: &str, chunk_size: usize) -> Result<Self, EnvelopeError> {
        let mut rng = rand::thread_rng();
        let mut data_key = [0u8; 32];
        rng.fill_bytes(&mut data_key);
        let mut prefix = [0u8; 7];
        rng.fill_bytes(&mut prefix);
        let wrapped = public_key
            .encrypt(&mut rng, Oaep::new::<sha2::Sha256>(), &data_key)
            .map_err(|e| EnvelopeError::Seal(e.to_string()))?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let header = Header {
            key_id: key_id(public_key),
            wrapped_key: b64.encode(&wrapped),
            nonce_prefix: b64.encode(prefix),
            chunk_size: chunk_size as u32,
            compression: "zlib".into(),
            content: content.into(),
        };
        let json = serde_json::to_vec(&header).map_err(|e| EnvelopeError::Seal(e.to_string()))?;
        let mut preamble = Vec::with_capacity(PREAMBLE_FIXED + json.len());
        preamble.extend_from_slice(MAGIC);
        preamble.push(VERSION);
        preamble.extend_from_slice(&(json.len() as u32).to_be_bytes());
        preamble.extend_from_slice(&json);
        out.write_all(&preamble)?;
        let cipher = Aes256Gcm::new_from_slice(&data_key).map_err(|e| EnvelopeError::Seal(e.to_string()))?;
        Ok(Self {
            out,
            cipher,
            written: preamble.len() as u64,
            preamble,
            prefix,
            chunk_size,
            buf: Vec::with_capacity(chunk_size + TAG_LEN),
            counter: 0,
        })
    }

    fn seal(&mut self, last: bool) -> Result<(), EnvelopeError> {
        let n = nonce(&self.prefix, self.counter, last);
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&n), &self.preamble, &mut self.buf)
            .map_err(|e| EnvelopeError::Seal(e.to_string()))?;
        self.out.write_all(&self.buf)?;
        self.out.write_all(&tag)?;
        self.written += (self.buf.len() + TAG_LEN) as u64;
        self.buf.clear();
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| EnvelopeError::Seal("too many chunks in one object".into()))?;
        Ok(())
    }

    /// Seals the final chunk and returns the inner writer and the envelope's total size.
    pub fn finish(mut self) -> Result<(W, u64), EnvelopeError> {
        self.seal(true)?;
        self.out.flush()?;
        Ok((self.out, self.written))
    }
}

impl<W: Write> Write for EnvelopeWriter<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let total = data.len();
        while !data.is_empty() {
            // A full chunk is sealed only once more data arrives, so the last chunk is never empty
            // unless the whole plaintext is.
            if self.buf.len() == self.chunk_size {
                self.seal(false).map_err(io::Error::other)?;
            }
            let room = self.chunk_size - self.buf.len();
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads the header of an envelope without decrypting anything.
pub fn read_header(object: &[u8]) -> Result<(Header, usize), EnvelopeError> {
    if object.len() < PREAMBLE_FIXED || &object[..4] != MAGIC {
        return Err(EnvelopeError::Format("missing ETLE magic".into()));
    }
    if object[4] != VERSION {
        return Err(EnvelopeError::Format(format!("unsupported envelope version {}", object[4])));
    }
    let len = u32::from_be_bytes([object[5], object[6], object[7], object[8]]) as usize;
    if len > MAX_HEADER || object.len() < PREAMBLE_FIXED + len {
        return Err(EnvelopeError::Format("header truncated".into()));
    }
    let header: Header = serde_json::from_slice(&object[PREAMBLE_FIXED..PREAMBLE_FIXED + len])
        .map_err(|e| EnvelopeError::Format(format!("bad header: {e}")))?;
    if header.chunk_size == 0 || header.compression != "zlib" {
        return Err(EnvelopeError::Format("unsupported header parameters".into()));
    }
    Ok((header, PREAMBLE_FIXED + len))
}

/// OpenSSL copies of the private keys used so far, by modulus (a run uses one or two).
static OPENSSL_KEYS: std::sync::Mutex<Vec<(rsa::BigUint, openssl::pkey::PKey<openssl::pkey::Private>)>> = std::sync::Mutex::new(Vec::new());

/// Unwraps an object's data key: RSA-OAEP with SHA-256 (MGF1-SHA-256, no label), done by
/// OpenSSL — already linked for librdkafka's TLS, about 4× faster than the `rsa` crate's
/// private-key operation (2.5% of `etl standard`'s CPU with 4096-bit keys). Where OpenSSL
/// cannot take the key, the `rsa` crate does the same operation.
fn unwrap_key(private_key: &RsaPrivateKey, wrapped: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    use rsa::traits::PublicKeyParts;
    // A wrapped key is exactly as long as the modulus. OpenSSL would read a shorter one as
    // left-padded with zeros (so a cut first byte that happened to be 0 still unwrapped).
    if wrapped.len() != private_key.size() {
        return Err(EnvelopeError::Unwrap);
    }
    let n = private_key.n();
    let pkey = {
        let mut keys = OPENSSL_KEYS.lock().map_err(|_| EnvelopeError::Unwrap)?;
        match keys.iter().find(|(m, _)| m == n) {
            Some((_, k)) => Some(k.clone()),
            None => {
                let k = openssl_key(private_key);
                if let Some(k) = &k {
                    keys.push((n.clone(), k.clone()));
                }
                k
            }
        }
    };
    match pkey {
        Some(k) => {
            let oaep = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
                let mut ctx = openssl::pkey_ctx::PkeyCtx::new(&k)?;
                ctx.decrypt_init()?;
                ctx.set_rsa_padding(openssl::rsa::Padding::PKCS1_OAEP)?;
                ctx.set_rsa_oaep_md(openssl::md::Md::sha256())?;
                ctx.set_rsa_mgf1_md(openssl::md::Md::sha256())?;
                let mut out = Vec::new();
                ctx.decrypt_to_vec(wrapped, &mut out)?;
                Ok(out)
            };
            oaep().map_err(|_| EnvelopeError::Unwrap)
        }
        None => private_key.decrypt(Oaep::new::<sha2::Sha256>(), wrapped).map_err(|_| EnvelopeError::Unwrap),
    }
}

/// The OpenSSL form of `key` (through its PKCS#1 DER encoding).
fn openssl_key(key: &RsaPrivateKey) -> Option<openssl::pkey::PKey<openssl::pkey::Private>> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let der = key.to_pkcs1_der().ok()?;
    let rsa = openssl::rsa::Rsa::private_key_from_der(der.as_bytes()).ok()?;
    openssl::pkey::PKey::from_rsa(rsa).ok()
}

/// Decrypts a whole envelope and returns the compressed payload, authenticated.
pub fn decrypt(object: &[u8], private_key: &RsaPrivateKey) -> Result<Vec<u8>, EnvelopeError> {
    let mut out = Vec::new();
    decrypt_into(object, private_key, &mut out)?;
    Ok(out)
}

/// [`decrypt`] into `out` (cleared first; its capacity is reused).
fn decrypt_into(object: &[u8], private_key: &RsaPrivateKey, out: &mut Vec<u8>) -> Result<(), EnvelopeError> {
    let (header, body_start) = read_header(object)?;
    let given = key_id(&private_key.to_public_key());
    if header.key_id != given {
        return Err(EnvelopeError::WrongKey { object_key_id: header.key_id, given_key_id: given });
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let wrapped = b64.decode(&header.wrapped_key).map_err(|_| EnvelopeError::Unwrap)?;
    let data_key = unwrap_key(private_key, &wrapped)?;
    let cipher = Aes256Gcm::new_from_slice(&data_key).map_err(|_| EnvelopeError::Unwrap)?;
    let prefix: [u8; 7] = b64
        .decode(&header.nonce_prefix)
        .ok()
        .and_then(|p| p.try_into().ok())
        .ok_or_else(|| EnvelopeError::Format("bad nonce prefix".into()))?;
    let preamble = &object[..body_start];
    let mut body = &object[body_start..];
    let full = header.chunk_size as usize + TAG_LEN;
    out.clear();
    out.reserve(body.len());
    let mut counter: u32 = 0;
    loop {
        let last = body.len() <= full;
        let take = if last { body.len() } else { full };
        if take < TAG_LEN {
            return Err(EnvelopeError::Tampered { chunk: counter });
        }
        let (chunk, rest) = body.split_at(take);
        let (ct, tag) = chunk.split_at(take - TAG_LEN);
        let start = out.len();
        out.extend_from_slice(ct);
        cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(&nonce(&prefix, counter, last)),
                preamble,
                &mut out[start..],
                aes_gcm::Tag::from_slice(tag),
            )
            .map_err(|_| EnvelopeError::Tampered { chunk: counter })?;
        body = rest;
        if last {
            return Ok(());
        }
        counter += 1;
    }
}

/// Compresses `plaintext` with zlib at `level` and seals it: the whole write path in one call.
pub fn seal_bytes(plaintext: &[u8], public_key: &RsaPublicKey, level: u32, content: &str) -> Result<Sealed, EnvelopeError> {
    let mut sealer = Sealer::new(public_key, level, content, plaintext.len())?;
    sealer.write_all(plaintext)?;
    sealer.finish()
}

/// Output of sealing: the object bytes and its size accounting.
#[derive(Debug)]
pub struct Sealed {
    /// The complete envelope.
    pub bytes: Vec<u8>,
    /// Plaintext bytes in.
    pub plain_bytes: u64,
    /// Bytes after compression, before encryption.
    pub compressed_bytes: u64,
}

/// Compress-then-encrypt into an in-memory object. The plaintext of the object is gathered
/// (the caller cuts objects by size, so this is bounded) and compressed in one call with
/// libdeflate, which writes a standard zlib stream (RFC 1950, readable by any zlib) about 1.7×
/// faster than zlib at level 6 on these bytes and ~14% smaller; the compressed stream is then
/// encrypted chunk by chunk.
pub struct Sealer {
    public_key: RsaPublicKey,
    level: u32,
    content: String,
    plain: Vec<u8>,
}

impl Sealer {
    /// Starts a new object sealed for `public_key`, with room for `capacity_hint` plaintext bytes.
    pub fn new(public_key: &RsaPublicKey, level: u32, content: &str, capacity_hint: usize) -> Result<Self, EnvelopeError> {
        Self::with_buffer(public_key, level, content, Vec::with_capacity(capacity_hint.max(4096)))
    }

    /// Like [`Sealer::new`], reusing `buf` (cleared) for the plaintext.
    pub fn with_buffer(public_key: &RsaPublicKey, level: u32, content: &str, mut buf: Vec<u8>) -> Result<Self, EnvelopeError> {
        buf.clear();
        Ok(Self { public_key: public_key.clone(), level: level.min(12), content: content.to_string(), plain: buf })
    }

    /// Plaintext bytes written so far.
    pub fn plain_bytes(&self) -> u64 {
        self.plain.len() as u64
    }

    /// The object's plaintext so far, to append to in place (what `write` does, without a copy
    /// through a caller's buffer).
    pub fn plaintext_mut(&mut self) -> &mut Vec<u8> {
        &mut self.plain
    }

    /// Compresses and encrypts; also hands back the plaintext buffer for reuse.
    pub fn finish_reuse(self) -> Result<(Sealed, Vec<u8>), EnvelopeError> {
        let lvl = libdeflater::CompressionLvl::new(self.level as i32).map_err(|e| EnvelopeError::Seal(format!("compression level {}: {e:?}", self.level)))?;
        let mut c = libdeflater::Compressor::new(lvl);
        let mut compressed = vec![0u8; c.zlib_compress_bound(self.plain.len())];
        let n = c.zlib_compress(&self.plain, &mut compressed).map_err(|e| EnvelopeError::Seal(format!("zlib compression: {e:?}")))?;
        compressed.truncate(n);
        let out = Vec::with_capacity(n + n / (DEFAULT_CHUNK_SIZE / TAG_LEN) + 1024);
        let mut env = EnvelopeWriter::new(out, &self.public_key, &self.content, DEFAULT_CHUNK_SIZE)?;
        env.write_all(&compressed)?;
        let (bytes, _) = env.finish()?;
        Ok((Sealed { bytes, plain_bytes: self.plain.len() as u64, compressed_bytes: n as u64 }, self.plain))
    }

    /// Compresses and encrypts.
    pub fn finish(self) -> Result<Sealed, EnvelopeError> {
        self.finish_reuse().map(|(s, _)| s)
    }
}

impl Write for Sealer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.plain.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Decrypts and decompresses a whole object into its plaintext.
pub fn open(object: &[u8], private_key: &RsaPrivateKey) -> Result<Plaintext, EnvelopeError> {
    let mut compressed = take(&COMPRESSED).unwrap_or_default();
    let r = decrypt_into(object, private_key, &mut compressed).and_then(|()| inflate_authenticated(&compressed));
    give(&COMPRESSED, compressed);
    r
}

/// Takes a buffer from `pool`.
fn take(pool: &std::sync::Mutex<Vec<Vec<u8>>>) -> Option<Vec<u8>> {
    pool.lock().ok().and_then(|mut p| p.pop())
}

/// Returns a buffer to `pool`, which keeps one per object a reader has open at a time (CPUs +
/// 1): as many as are in use while objects are read, so the pool adds nothing to peak memory.
fn give(pool: &std::sync::Mutex<Vec<Vec<u8>>>, buf: Vec<u8>) {
    if let Ok(mut p) = pool.lock() {
        if p.len() <= crate::parallelism() {
            p.push(buf);
        }
    }
}

/// Largest plaintext an object may inflate to (guards against a zlib bomb).
const MAX_PLAINTEXT: usize = 4 << 30;

/// Plaintext buffers kept for reuse (see [`Plaintext`]).
static POOL: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
/// Decrypted, still compressed payloads' buffers kept for reuse (a few MiB each: fresh ones
/// cost a page fault per 4 KiB, 6% of `etl standard`'s).
static COMPRESSED: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

/// An inflated object. Its buffer is large (a whole object, 32 MiB by default) and short-lived,
/// so it goes back to a small pool when dropped and the next object inflates into pages that
/// are already mapped: fresh buffers cost a page fault per 4 KiB (measured: 39% of the page
/// faults of `etl standard`). [`release_buffers`] empties the pool.
pub struct Plaintext {
    /// Fully initialised; only `..len` is this object's.
    buf: Vec<u8>,
    len: usize,
}

impl std::ops::Deref for Plaintext {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plaintext({} bytes)", self.len)
    }
}

impl Drop for Plaintext {
    fn drop(&mut self) {
        give(&POOL, std::mem::take(&mut self.buf));
    }
}

/// Frees the pooled buffers (call when no more objects will be opened for a while).
pub fn release_buffers() {
    for pool in [&POOL, &COMPRESSED] {
        if let Ok(mut p) = pool.lock() {
            p.clear();
        }
    }
}

/// Inflates a whole zlib stream with libdeflate (about twice zlib's speed here). The output
/// size is not stored: a pooled buffer is tried first, a fresh one starts at 32× the input —
/// untouched pages of a fresh allocation cost nothing — and doubles if the stream holds more.
pub fn inflate(compressed: &[u8]) -> Result<Plaintext, EnvelopeError> {
    inflate_with(compressed, true)
}

/// [`inflate`] of a stream just authenticated by AES-GCM: the zlib header is checked, the
/// Adler-32 trailer is not (the tag already proved these are the bytes that were sealed;
/// skipping the checksum saves a pass over the plaintext, ~1% of `etl standard`).
fn inflate_authenticated(compressed: &[u8]) -> Result<Plaintext, EnvelopeError> {
    inflate_with(compressed, false)
}

fn inflate_with(compressed: &[u8], check_adler: bool) -> Result<Plaintext, EnvelopeError> {
    let corrupt = || EnvelopeError::Decompress(io::Error::new(io::ErrorKind::InvalidData, "corrupt zlib stream"));
    // RFC 1950: CMF (deflate, window ≤ 32 KiB), FLG (no preset dictionary, header checksum),
    // the deflate stream, then the Adler-32 of the plaintext.
    let deflate = match compressed {
        [cmf, flg, body @ .., _, _, _, _] if !check_adler && cmf & 0x0f == 8 && cmf >> 4 <= 7 && flg & 0x20 == 0 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0 => Some(body),
        _ if !check_adler => return Err(corrupt()),
        _ => None,
    };
    let mut d = libdeflater::Decompressor::new();
    let fresh = compressed.len().saturating_mul(32).clamp(64 * 1024, MAX_PLAINTEXT);
    let mut out = take(&POOL).unwrap_or_else(|| vec![0u8; fresh]);
    loop {
        let r = match deflate {
            Some(body) => d.deflate_decompress(body, &mut out),
            None => d.zlib_decompress(compressed, &mut out),
        };
        match r {
            Ok(len) => return Ok(Plaintext { buf: out, len }),
            Err(libdeflater::DecompressionError::InsufficientSpace) if out.len() < MAX_PLAINTEXT => {
                let grown = out.len().saturating_mul(2).max(fresh).min(MAX_PLAINTEXT);
                out = vec![0u8; grown];
            }
            Err(libdeflater::DecompressionError::InsufficientSpace) => {
                return Err(EnvelopeError::Decompress(io::Error::new(io::ErrorKind::InvalidData, "plaintext larger than 4 GiB")))
            }
            Err(libdeflater::DecompressionError::BadData) => return Err(corrupt()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::test_keypair;

    #[test]
    fn roundtrip_various_sizes() {
        let (private, public) = test_keypair();
        for n in [0usize, 1, 100, DEFAULT_CHUNK_SIZE - 1, DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_SIZE * 3 + 7] {
            // Incompressible-ish data so compressed size crosses chunk boundaries.
            let data: Vec<u8> = (0..n).map(|i| ((i as u64 * 2654435761) >> 13) as u8).collect();
            let sealed = seal_bytes(&data, &public, 6, "test").unwrap();
            assert_eq!(sealed.plain_bytes, n as u64);
            assert_eq!(&*open(&sealed.bytes, &private).unwrap(), &data[..], "size {n}");
        }
    }

    #[test]
    fn recycled_buffers_hold_exactly_the_next_object() {
        let (private, public) = test_keypair();
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let small = b"a short object".to_vec();
        // Zeros compress ~1000:1, far beyond the 32x first guess: the buffer has to grow.
        let bomb = vec![0u8; 40 << 20];
        for data in [&big, &small, &bomb, &small, &big] {
            let sealed = seal_bytes(data, &public, 5, "test").unwrap();
            let p = open(&sealed.bytes, &private).unwrap();
            assert_eq!(p.len(), data.len());
            assert!(*p == data[..], "{} bytes came back different", data.len());
        }
        release_buffers();
    }

    #[test]
    fn openssl_unwraps_what_the_rsa_crate_wrapped_and_refuses_anything_else() {
        let (private, public) = test_keypair();
        let key = [7u8; 32];
        let wrapped = public.encrypt(&mut rand::thread_rng(), Oaep::new::<sha2::Sha256>(), &key).unwrap();
        assert!(openssl_key(&private).is_some());
        assert_eq!(unwrap_key(&private, &wrapped).unwrap(), key);
        assert_eq!(unwrap_key(&private, &wrapped).unwrap(), private.decrypt(Oaep::new::<sha2::Sha256>(), &wrapped).unwrap(), "the cached key again");
        let mut bad = wrapped.clone();
        bad[10] ^= 1;
        assert!(matches!(unwrap_key(&private, &bad), Err(EnvelopeError::Unwrap)));
        assert!(matches!(unwrap_key(&private, &wrapped[1..]), Err(EnvelopeError::Unwrap)));
        // A wrapping that starts with a zero byte means the same number without it: still refused
        // (it has to be as long as the modulus), and so is one a byte too long.
        let zero_led = (0..20_000)
            .map(|_| public.encrypt(&mut rand::thread_rng(), Oaep::new::<sha2::Sha256>(), &key).unwrap())
            .find(|w| w[0] == 0)
            .expect("about one wrapping in 200 starts with a zero byte");
        assert_eq!(unwrap_key(&private, &zero_led).unwrap(), key);
        assert!(matches!(unwrap_key(&private, &zero_led[1..]), Err(EnvelopeError::Unwrap)), "one byte short");
        assert!(matches!(unwrap_key(&private, &[&[0u8][..], &wrapped].concat()), Err(EnvelopeError::Unwrap)), "one byte long");
        // PKCS#1 v1.5 padding is not OAEP: refused.
        let v15 = public.encrypt(&mut rand::thread_rng(), rsa::Pkcs1v15Encrypt, &key).unwrap();
        assert!(matches!(unwrap_key(&private, &v15), Err(EnvelopeError::Unwrap)));
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let (private, public) = test_keypair();
        let data = b"hello envelope ".repeat(1000);
        let sealed = seal_bytes(&data, &public, 6, "test").unwrap();
        // Flip bytes across the header and body; every one must fail.
        for i in (0..sealed.bytes.len()).step_by(7) {
            let mut bad = sealed.bytes.clone();
            bad[i] ^= 0x01;
            assert!(open(&bad, &private).is_err(), "flip at {i} went unnoticed");
        }
    }

    #[test]
    fn truncation_is_detected_even_at_chunk_boundary() {
        let (private, public) = test_keypair();
        let data: Vec<u8> = (0..DEFAULT_CHUNK_SIZE * 3).map(|i| ((i * 7919) % 251) as u8).collect();
        let mut buf = Vec::new();
        let mut w = EnvelopeWriter::new(&mut buf, &public, "t", 4096).unwrap();
        w.write_all(&data).unwrap();
        w.finish().unwrap();
        let (_, start) = read_header(&buf).unwrap();
        // Cut exactly after the first full chunk: the remaining chunk now looks "last".
        let cut = start + 4096 + TAG_LEN;
        assert!(matches!(decrypt(&buf[..cut], &private), Err(EnvelopeError::Tampered { .. })));
        assert!(decrypt(&buf[..buf.len() - 1], &private).is_err());
        assert!(decrypt(&buf[..5], &private).is_err());
        assert_eq!(decrypt(&buf, &private).unwrap(), data);
    }

    #[test]
    fn wrong_key_names_both_key_ids() {
        let (_, public) = test_keypair();
        let other = crate::keys::generate(2048).unwrap();
        let sealed = seal_bytes(b"x", &public, 6, "t").unwrap();
        match open(&sealed.bytes, &other) {
            Err(EnvelopeError::WrongKey { object_key_id, given_key_id }) => {
                assert_eq!(object_key_id, key_id(&public));
                assert_ne!(object_key_id, given_key_id);
            }
            other => panic!("expected WrongKey, got {other:?}"),
        }
    }

    #[test]
    fn inflate_grows_its_buffer_for_highly_compressible_data_and_rejects_garbage() {
        let data = vec![b'a'; 10 << 20]; // ratio ≈ 1000: several doublings
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(&data).unwrap();
        let z = e.finish().unwrap();
        assert_eq!(&*inflate(&z).unwrap(), &data[..]);
        assert!(matches!(inflate(&z[..z.len() / 2]), Err(EnvelopeError::Decompress(_))));
        assert!(matches!(inflate(b"not zlib at all"), Err(EnvelopeError::Decompress(_))));
        // Authenticated streams: the same plaintext without the checksum pass; a bad header,
        // a cut stream or a preset dictionary are still errors.
        assert_eq!(&*inflate_authenticated(&z).unwrap(), &data[..]);
        let mut wrong_sum = z.clone();
        *wrong_sum.last_mut().unwrap() ^= 1;
        assert!(inflate(&wrong_sum).is_err());
        assert_eq!(&*inflate_authenticated(&wrong_sum).unwrap(), &data[..]);
        for bad in [&z[..z.len() / 2], &z[..5], &b"not zlib at all"[..], &[0x78, 0xbb, 0, 0, 0, 0, 0][..]] {
            assert!(matches!(inflate_authenticated(bad), Err(EnvelopeError::Decompress(_))), "{:?}", &bad[..5]);
        }
    }

    #[test]
    fn garbage_is_not_an_envelope() {
        let (private, _) = test_keypair();
        assert!(matches!(open(b"{\"not\":\"an envelope\"}", &private), Err(EnvelopeError::Format(_))));
        assert!(matches!(open(b"", &private), Err(EnvelopeError::Format(_))));
    }
}

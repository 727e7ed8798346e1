//! Scratch files (the spilled runs of `etl standard`), written and read around the page cache.
//!
//! ```text
//!   ScratchWriter ── 512 KiB aligned blocks ──► write-behind thread ──► file (O_DIRECT)
//!        ▲  (Write)                             (2 blocks queued)          │
//!        │                                                   read-ahead thread ──► ScratchReader
//!        │                                                   (2 blocks ahead)          │ (Read)
//!        └────────────── blocks reused from a small pool ◄─────────────────────────────┘
//! ```
//!
//! A spilled run is written once and read once soon after, so caching it helps nothing, and
//! filling the page cache is what costs: on the 2-core benchmark VM, writing 512 MiB through
//! the page cache took 0.9–1.3 s of kernel CPU (every page-cache page is fresh memory), with
//! direct I/O 0.05–0.09 s; reading it back directly 0.03–0.08 s. `etl standard` spills about
//! 100 bytes per row, 0.5 GB for 5M rows.
//!
//! Direct I/O wants buffers, lengths and offsets aligned to the device's blocks: the writer
//! writes whole aligned blocks and pads the last one, then cuts the file to its true length, so
//! the file holds exactly the bytes written and any reader can read it. Where direct I/O is
//! refused (tmpfs on older kernels, other systems) the same code does ordinary buffered I/O.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::mpsc;
use std::sync::Mutex;

/// Alignment direct I/O needs (a page covers every common device block size).
const ALIGN: usize = 4096;
/// Bytes per write and per read-ahead block.
const BLOCK: usize = 512 * 1024;
/// Blocks a reader's thread may have read beyond the one being consumed.
const AHEAD: usize = 2;
/// Blocks kept for reuse (fresh buffers cost a page fault per 4 KiB): as many as a merge phase
/// has in use at once (two merges of a few runs, up to four blocks each), so the pool keeps no
/// more than the peak it was filled at.
const POOL_MAX: usize = 64;

#[repr(C, align(4096))]
#[derive(Clone, Copy)]
struct Page([u8; ALIGN]);

/// A `BLOCK`-byte buffer aligned for direct I/O.
struct Block(Box<[Page]>);

impl Block {
    fn bytes(&self) -> &[u8] {
        // SAFETY: `Page` is plain bytes with no padding (size = alignment = ALIGN), so the
        // boxed pages are BLOCK initialised, contiguous bytes.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast::<u8>(), self.0.len() * ALIGN) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`; any byte pattern is a valid `Page`.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<u8>(), self.0.len() * ALIGN) }
    }
}

static POOL: Mutex<Vec<Block>> = Mutex::new(Vec::new());

fn take_block() -> Block {
    POOL.lock().ok().and_then(|mut p| p.pop()).unwrap_or_else(|| Block(vec![Page([0; ALIGN]); BLOCK / ALIGN].into_boxed_slice()))
}

fn give_block(b: Block) {
    if let Ok(mut p) = POOL.lock() {
        if p.len() < POOL_MAX {
            p.push(b);
        }
    }
}

/// Frees the pooled blocks (call when no scratch file will be used for a while).
pub fn release_blocks() {
    if let Ok(mut p) = POOL.lock() {
        p.clear();
    }
}

/// Opens `path` with `opts`, bypassing the page cache where the file system allows it.
fn open(opts: &OpenOptions, path: &Path, direct: bool) -> io::Result<File> {
    #[cfg(target_os = "linux")]
    if direct {
        use std::os::unix::fs::OpenOptionsExt;
        let mut o = opts.clone();
        o.custom_flags(libc::O_DIRECT);
        match o.open(path) {
            Ok(f) => return Ok(f),
            // The file system does not do direct I/O: buffered below.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    let _ = direct;
    opts.open(path)
}

/// Writes a scratch file in aligned blocks; [`ScratchWriter::finish`] completes it. A thread
/// writes the filled blocks (up to [`AHEAD`] queued), so the caller goes on encoding while the
/// disk works: a spill used to wait ≈ 0.5–2 ms per 512 KiB block, and parsing waited for the
/// spill (0.3 s of a 2.3 s parse phase at 5M records).
pub struct ScratchWriter {
    /// Filled blocks (and how many of their bytes) to the writing thread; `None` once finished.
    tx: Option<mpsc::SyncSender<(Block, usize)>>,
    /// Written blocks back from the thread, for reuse.
    spent: mpsc::Receiver<Block>,
    /// The writing thread; it hands the file back when the channel closes.
    thread: Option<std::thread::JoinHandle<io::Result<File>>>,
    block: Option<Block>,
    /// Bytes of `block` filled.
    filled: usize,
    /// Bytes handed to the thread.
    written: u64,
}

impl ScratchWriter {
    /// Creates (or truncates) `path`, with direct I/O where the file system allows it.
    pub fn create(path: &Path) -> io::Result<Self> {
        Self::create_with(path, true)
    }

    fn create_with(path: &Path, direct: bool) -> io::Result<Self> {
        let mut file = open(OpenOptions::new().write(true).create(true).truncate(true), path, direct)?;
        let (tx, rx) = mpsc::sync_channel::<(Block, usize)>(AHEAD);
        let (back, spent) = mpsc::channel();
        let thread = std::thread::Builder::new().name("etl-scratch-write".into()).spawn(move || {
            for (b, len) in rx {
                let r = file.write_all(&b.bytes()[..len]);
                if let Err(mpsc::SendError(b)) = back.send(b) {
                    give_block(b);
                }
                r?;
            }
            Ok(file)
        })?;
        Ok(Self { tx: Some(tx), spent, thread: Some(thread), block: Some(take_block()), filled: 0, written: 0 })
    }

    /// Hands the current block's first `len` bytes to the writing thread and takes an empty one.
    fn write_block(&mut self, len: usize) -> io::Result<()> {
        let Some(b) = self.block.take() else { return Err(failed()) };
        let Some(tx) = self.tx.as_ref() else {
            give_block(b);
            return Err(failed());
        };
        if let Err(mpsc::SendError((b, _))) = tx.send((b, len)) {
            // The thread stopped: it failed a write; its error is the answer.
            give_block(b);
            return Err(self.stop().err().unwrap_or_else(failed));
        }
        self.written += len as u64;
        self.block = Some(self.spent.try_recv().unwrap_or_else(|_| take_block()));
        Ok(())
    }

    /// Closes the channel and waits for the thread: the file, or the thread's write error.
    fn stop(&mut self) -> io::Result<File> {
        self.tx = None;
        let t = self.thread.take().ok_or_else(failed)?;
        let r = t.join().map_err(|_| io::Error::other("scratch writer thread panicked"))?;
        while let Ok(b) = self.spent.try_recv() {
            give_block(b);
        }
        r
    }

    /// Writes what is left (the last block padded to the alignment, then the file cut back to
    /// its true length) and returns the file's length.
    pub fn finish(mut self) -> io::Result<u64> {
        let total = self.written + self.filled as u64;
        let pad = self.filled > 0;
        if pad {
            let padded = self.filled.next_multiple_of(ALIGN);
            let filled = self.filled;
            self.block.as_mut().ok_or_else(failed)?.bytes_mut()[filled..padded].fill(0);
            self.write_block(padded)?;
            self.filled = 0;
        }
        let file = self.stop()?;
        if pad {
            file.set_len(total)?;
        }
        Ok(total)
    }
}

/// The error of a writer used after a failed write.
fn failed() -> io::Error {
    io::Error::other("the scratch file's writer failed earlier")
}

impl Write for ScratchWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let filled = self.filled;
        let n = buf.len().min(BLOCK - filled);
        self.block.as_mut().ok_or_else(failed)?.bytes_mut()[filled..filled + n].copy_from_slice(&buf[..n]);
        self.filled += n;
        if self.filled == BLOCK {
            self.write_block(BLOCK)?;
            self.filled = 0;
        }
        Ok(n)
    }

    /// Whole blocks are written as they fill; the last, partial one only by
    /// [`ScratchWriter::finish`] (direct I/O cannot write it twice).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ScratchWriter {
    fn drop(&mut self) {
        if let Some(b) = self.block.take() {
            give_block(b);
        }
        // Not finished (an error on the way): let the thread write what it has and end.
        if self.thread.is_some() {
            let _ = self.stop();
        }
    }
}

/// Reads a scratch file; a thread reads up to [`AHEAD`] blocks ahead, so the reader rarely
/// waits for the disk.
pub struct ScratchReader {
    rx: mpsc::Receiver<io::Result<(Block, usize)>>,
    back: mpsc::Sender<Block>,
    cur: Option<(Block, usize)>,
    pos: usize,
}

impl ScratchReader {
    /// Opens `path`, with direct I/O where the file system allows it, and starts reading ahead.
    pub fn open(path: &Path) -> io::Result<Self> {
        Self::open_with(path, true)
    }

    fn open_with(path: &Path, direct: bool) -> io::Result<Self> {
        let file = open(OpenOptions::new().read(true), path, direct)?;
        let (tx, rx) = mpsc::sync_channel(AHEAD);
        let (back, spent) = mpsc::channel();
        std::thread::Builder::new().name("etl-scratch-read".into()).spawn(move || read_ahead(file, &tx, &spent))?;
        Ok(Self { rx, back, cur: None, pos: 0 })
    }
}

/// The read-ahead thread: whole blocks in file order until the end, an error, or the reader is
/// dropped.
fn read_ahead(mut file: File, tx: &mpsc::SyncSender<io::Result<(Block, usize)>>, spent: &mpsc::Receiver<Block>) {
    loop {
        let mut b = spent.try_recv().unwrap_or_else(|_| take_block());
        let (mut n, mut end) = (0, false);
        while n < BLOCK {
            match file.read(&mut b.bytes_mut()[n..]) {
                Ok(0) => {
                    end = true;
                    break;
                }
                Ok(k) => {
                    n += k;
                    // A short read that leaves the buffer unaligned is the end of the file
                    // (direct I/O could not go on from there anyway).
                    if n % ALIGN != 0 {
                        end = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    give_block(b);
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        if n == 0 {
            give_block(b);
            return;
        }
        if let Err(mpsc::SendError(Ok((b, _)))) = tx.send(Ok((b, n))) {
            give_block(b);
            return;
        }
        if end {
            return;
        }
    }
}

impl Read for ScratchReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some((b, n)) = &self.cur {
                if self.pos < *n {
                    let k = out.len().min(n - self.pos);
                    out[..k].copy_from_slice(&b.bytes()[self.pos..self.pos + k]);
                    self.pos += k;
                    return Ok(k);
                }
            }
            if let Some((b, _)) = self.cur.take() {
                // The thread may be gone (end of file): then the block goes to the pool.
                if let Err(mpsc::SendError(b)) = self.back.send(b) {
                    give_block(b);
                }
            }
            self.pos = 0;
            match self.rx.recv() {
                Ok(Ok(c)) => self.cur = Some(c),
                Ok(Err(e)) => return Err(e),
                Err(mpsc::RecvError) => return Ok(0),
            }
        }
    }
}

impl Drop for ScratchReader {
    fn drop(&mut self) {
        if let Some((b, _)) = self.cur.take() {
            give_block(b);
        }
        while let Ok(Ok((b, _))) = self.rx.try_recv() {
            give_block(b);
        }
    }
}

/// Message buffers kept for reuse by [`IpcBatches`]: a merge holds one batch per run, and a
/// batch's buffer comes back here when the merge lets go of its last column.
static MESSAGES: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
/// Message buffers kept (about 1.1 MiB each at 16 Ki rows).
const MESSAGES_MAX: usize = 48;
/// Messages smaller than this (the schema, a run's short last batch) are not pooled: growing
/// a small pooled buffer to a batch's size would cost what the pool saves.
const MESSAGE_MIN: usize = 256 * 1024;
/// Bounds on one message read by [`IpcBatches`] (a spilled batch is about 1 MiB): a length
/// beyond them is a corrupt file, not an allocation to attempt.
const MAX_META: usize = 16 << 20;
const MAX_BODY: usize = 1 << 30;

/// A message buffer on loan to Arrow arrays; back to [`MESSAGES`] when the last one is dropped.
struct Loaned(Vec<u8>);

impl Drop for Loaned {
    fn drop(&mut self) {
        if self.0.len() < MESSAGE_MIN {
            return;
        }
        if let Ok(mut p) = MESSAGES.lock() {
            if p.len() < MESSAGES_MAX {
                p.push(std::mem::take(&mut self.0));
            }
        }
    }
}

/// A buffer of `n` initialised bytes: a pooled one at least that long, else a new one.
fn take_message(n: usize) -> Vec<u8> {
    let pooled = (n >= MESSAGE_MIN)
        .then(|| MESSAGES.lock().ok())
        .flatten()
        .and_then(|mut p| p.iter().position(|v| v.len() >= n).map(|i| p.swap_remove(i)));
    pooled.unwrap_or_else(|| vec![0; n])
}

/// Frees the pooled message buffers (call when no spill will be read for a while).
pub fn release_messages() {
    if let Ok(mut p) = MESSAGES.lock() {
        p.clear();
    }
}

/// The record batches of an Arrow IPC stream in a scratch file, decoded without copying: each
/// message is read whole into a pooled buffer that the batch's columns then point into.
///
/// Arrow's `StreamReader` reads every message body into a freshly allocated, zeroed buffer;
/// a merge reads 0.5 GB of spilled runs per 5M rows, and those fresh pages (handed back to
/// the system between dates) were a quarter of the page faults of `etl standard`.
pub struct IpcBatches {
    file: ScratchReader,
    decoder: arrow::ipc::reader::StreamDecoder,
    meta: Vec<u8>,
    done: bool,
}

impl IpcBatches {
    /// Opens the IPC stream file at `path`.
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self::new(ScratchReader::open(path)?))
    }

    fn new(file: ScratchReader) -> Self {
        Self { file, decoder: arrow::ipc::reader::StreamDecoder::new(), meta: Vec::new(), done: false }
    }

    /// The next message as one buffer (its framing, metadata and body), or `None` at the end.
    fn message(&mut self) -> Result<Option<arrow::buffer::Buffer>, arrow::error::ArrowError> {
        use arrow::error::ArrowError;
        let eof = |e: io::Error| ArrowError::IoError(format!("reading an IPC message: {e}"), e);
        let mut word = [0u8; 4];
        // Every stream etl writes ends with the end-of-stream marker: a file that stops
        // before it was cut short.
        if self.file.read(&mut word[..1]).map_err(eof)? == 0 {
            return Err(ArrowError::IpcError("the stream ends without its end-of-stream marker (a truncated file)".into()));
        }
        self.file.read_exact(&mut word[1..]).map_err(eof)?;
        let mut prefix = word.to_vec();
        if word == [0xff; 4] {
            self.file.read_exact(&mut word).map_err(eof)?;
            prefix.extend_from_slice(&word);
        }
        let meta_len = u32::from_le_bytes(word) as usize;
        if meta_len == 0 {
            return Ok(None);
        }
        if meta_len > MAX_META {
            return Err(ArrowError::IpcError(format!("an IPC message with {meta_len} bytes of metadata (corrupt?)")));
        }
        self.meta.resize(meta_len, 0);
        self.file.read_exact(&mut self.meta).map_err(eof)?;
        let body_len = arrow::ipc::root_as_message(&self.meta)
            .map_err(|e| ArrowError::IpcError(format!("an IPC message that is not one: {e}")))?
            .bodyLength();
        let body_len = usize::try_from(body_len).ok().filter(|&n| n <= MAX_BODY).ok_or_else(|| ArrowError::IpcError(format!("an IPC message body of {body_len} bytes (corrupt?)")))?;
        let total = prefix.len() + meta_len + body_len;
        let mut buf = take_message(total);
        buf[..prefix.len()].copy_from_slice(&prefix);
        buf[prefix.len()..prefix.len() + meta_len].copy_from_slice(&self.meta);
        self.file.read_exact(&mut buf[prefix.len() + meta_len..total]).map_err(eof)?;
        let ptr = std::ptr::NonNull::new(buf.as_mut_ptr()).expect("a Vec's pointer is never null");
        // SAFETY: `ptr` points at `total` initialised bytes owned by the `Vec` inside the
        // owner; moving a `Vec` does not move its heap buffer, and the owner keeps it alive
        // and unchanged until the last `Buffer` pointing into it is dropped.
        Ok(Some(unsafe { arrow::buffer::Buffer::from_custom_allocation(ptr, total, std::sync::Arc::new(Loaned(buf))) }))
    }
}

impl Iterator for IpcBatches {
    type Item = Result<arrow::record_batch::RecordBatch, arrow::error::ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.message() {
                Ok(Some(mut m)) => match self.decoder.decode(&mut m) {
                    Ok(Some(b)) => return Some(Ok(b)),
                    Ok(None) => {}
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                },
                Ok(None) => {
                    self.done = true;
                    return self.decoder.finish().err().map(Err);
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| ((i as u64).wrapping_mul(2654435761) >> 11) as u8).collect()
    }

    #[test]
    fn files_hold_exactly_what_was_written_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        for direct in [true, false] {
            for n in [0, 1, ALIGN - 1, ALIGN, ALIGN + 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 4097] {
                let path = dir.path().join(format!("f-{direct}-{n}"));
                let want = data(n);
                let mut w = ScratchWriter::create_with(&path, direct).unwrap();
                // Odd-sized writes, as an IPC writer makes them.
                for part in want.chunks(1000 + n % 7) {
                    w.write_all(part).unwrap();
                }
                assert_eq!(w.finish().unwrap(), n as u64);
                assert_eq!(std::fs::read(&path).unwrap(), want, "{n} bytes, direct {direct}, read plainly");
                let mut back = Vec::new();
                ScratchReader::open_with(&path, direct).unwrap().read_to_end(&mut back).unwrap();
                assert!(back == want, "{n} bytes, direct {direct}: came back different ({} bytes)", back.len());
            }
        }
    }

    fn batches() -> Vec<arrow::record_batch::RecordBatch> {
        use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
        let mk = |n: usize, seed: i64| {
            let ids: ArrayRef = std::sync::Arc::new(Int64Array::from_iter((0..n as i64).map(|i| (i % 7 != 3).then_some(i * seed))));
            let xs: ArrayRef = std::sync::Arc::new(Float64Array::from_iter_values((0..n).map(|i| i as f64 / (seed as f64 + 0.5))));
            let names: ArrayRef = std::sync::Arc::new(StringArray::from_iter((0..n).map(|i| (i % 5 != 0).then(|| format!("v{}-{seed}", i * 31)))));
            arrow::record_batch::RecordBatch::try_from_iter_with_nullable([("id", ids, true), ("x", xs, false), ("name", names, true)]).unwrap()
        };
        // Sizes around a read-ahead block, an empty batch, a small one and a sliced one.
        vec![mk(40_000, 3), mk(0, 4), mk(17, 5), mk(100_000, 6).slice(12_345, 50_000), mk(3, 7)]
    }

    fn write_stream(path: &Path, direct: bool, batches: &[arrow::record_batch::RecordBatch]) -> u64 {
        let w = ScratchWriter::create_with(path, direct).unwrap();
        let mut s = arrow::ipc::writer::StreamWriter::try_new(w, &batches[0].schema()).unwrap();
        for b in batches {
            s.write(b).unwrap();
        }
        s.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn ipc_batches_read_back_what_a_stream_writer_wrote_with_buffers_reused() {
        let dir = tempfile::tempdir().unwrap();
        let want = batches();
        for direct in [true, false] {
            let path = dir.path().join(format!("s-{direct}.arrows"));
            write_stream(&path, direct, &want);
            // The first read's batches stay alive while the second read reuses what the pool
            // got back from the batches dropped in between: neither may see the other's bytes.
            let first: Vec<_> = IpcBatches::open(&path).unwrap().collect::<Result<_, _>>().unwrap();
            let mut again = Vec::new();
            for b in IpcBatches::open(&path).unwrap() {
                again.push(b.unwrap());
                let _dropped: Vec<_> = IpcBatches::open(&path).unwrap().take(2).collect();
            }
            assert_eq!(first, want, "direct {direct}");
            assert_eq!(again, want, "direct {direct}, buffers reused");
        }
    }

    #[test]
    fn a_cut_ipc_stream_is_an_error_not_a_short_read_or_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("whole.arrows");
        let n = write_stream(&path, false, &batches()) as usize;
        let whole = std::fs::read(&path).unwrap();
        let cut = dir.path().join("cut.arrows");
        for len in [0, 3, 4, 8, 100, n / 3, n / 2, n - 9, n - 8, n - 4, n - 1] {
            std::fs::write(&cut, &whole[..len]).unwrap();
            let r: Result<Vec<_>, _> = IpcBatches::open(&cut).unwrap().collect();
            let e = r.expect_err(&format!("a stream cut to {len} of {n} bytes"));
            assert!(matches!(e, arrow::error::ArrowError::IpcError(_) | arrow::error::ArrowError::IoError(..)), "cut to {len}: {e}");
        }
        // Garbage where a message length should be.
        let mut bad = whole.clone();
        bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&cut, &bad).unwrap();
        let e = IpcBatches::open(&cut).unwrap().next().unwrap().expect_err("a corrupt length");
        assert!(e.to_string().contains("corrupt"), "{e}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_failed_write_is_an_error_from_write_or_finish_not_a_panic() {
        // /dev/full refuses every write with ENOSPC (and direct I/O: buffered here).
        let mut w = ScratchWriter::create_with(Path::new("/dev/full"), false).unwrap();
        let data = data(BLOCK + 100);
        let e = (0..8).try_for_each(|_| w.write_all(&data)).err().or_else(|| w.finish().err()).expect("a write to a full device fails");
        assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{e}");
        // Nothing more is written after the failure, and asking again does not panic.
        let mut w = ScratchWriter::create_with(Path::new("/dev/full"), false).unwrap();
        let _ = (0..8).try_for_each(|_| w.write_all(&data));
        assert!(w.write_all(&data).and_then(|_| w.write_all(&data)).is_err());
    }

    #[test]
    fn a_reader_may_stop_early_and_a_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let mut w = ScratchWriter::create(&path).unwrap();
        w.write_all(&data(8 * BLOCK)).unwrap();
        w.finish().unwrap();
        let mut r = ScratchReader::open(&path).unwrap();
        let mut first = vec![0u8; 10];
        r.read_exact(&mut first).unwrap();
        assert_eq!(first, data(10));
        drop(r);
        let e = ScratchReader::open(&dir.path().join("missing")).err().expect("a missing file");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}

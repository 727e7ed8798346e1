//! Kafka edge: client configuration, topic metadata, and the producer behind `etl produce`.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::produce::Record;

/// Errors at the Kafka edge.
#[derive(Debug, thiserror::Error)]
pub enum KafkaEdgeError {
    /// Client creation or a request failed.
    #[error("kafka ({brokers}): {what}: {source}")]
    Client {
        /// Bootstrap servers.
        brokers: String,
        /// What was being done.
        what: String,
        /// Cause.
        source: KafkaError,
    },
    /// The topic does not exist.
    #[error("topic {topic:?} not found on {brokers} (create it first)")]
    NoTopic {
        /// Topic.
        topic: String,
        /// Bootstrap servers.
        brokers: String,
    },
    /// Some messages were not acknowledged.
    #[error("{failed} of {total} messages to topic {topic:?} were not delivered; first error: {first}")]
    Delivery {
        /// Topic.
        topic: String,
        /// Failed count.
        failed: u64,
        /// Total attempted.
        total: u64,
        /// First error.
        first: String,
    },
}

/// Base client configuration shared by every client `etl` creates.
pub fn client_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("client.id", "etl")
        .set("socket.timeout.ms", "10000")
        .set("log_level", "3");
    c
}

/// Partition ids of `topic`, sorted. Fails clearly if the topic or the brokers are missing.
pub fn partitions(consumer: &BaseConsumer, brokers: &str, topic: &str, timeout: Duration) -> Result<Vec<i32>, KafkaEdgeError> {
    let md = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|source| KafkaEdgeError::Client { brokers: brokers.into(), what: "cannot reach brokers to read topic metadata".into(), source })?;
    let t = md.topics().iter().find(|t| t.name() == topic);
    match t {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            let mut v: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
            v.sort_unstable();
            Ok(v)
        }
        _ => Err(KafkaEdgeError::NoTopic { topic: topic.into(), brokers: brokers.into() }),
    }
}

struct Delivery {
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Delivery {}

impl ProducerContext for Delivery {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut f) = self.first_error.lock() {
                    f.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
}

/// Sends `records` to `topic` (idempotent producer, acks=all) and waits for every delivery
/// report. Returns the number delivered; any failure is an error naming how many failed.
pub fn send(brokers: &str, topic: &str, records: &[Record], timeout: Duration) -> Result<u64, KafkaEdgeError> {
    let ctx = Delivery { ok: AtomicU64::new(0), failed: AtomicU64::new(0), first_error: Mutex::new(None) };
    let client = |what: &str, source| KafkaEdgeError::Client { brokers: brokers.into(), what: what.into(), source };
    let producer: BaseProducer<Delivery> = client_config(brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .set("message.timeout.ms", &timeout.as_millis().to_string())
        .create_with_context(ctx)
        .map_err(|e| client("cannot create producer", e))?;
    {
        // Fail fast (and clearly) when the brokers or the topic are not there.
        let probe: BaseConsumer = client_config(brokers).create().map_err(|e| client("cannot create client", e))?;
        partitions(&probe, brokers, topic, timeout.min(Duration::from_secs(15)))?;
    }
    for r in records {
        let mut rec = BaseRecord::to(topic).payload(&r.payload[..]);
        if let Some(k) = &r.key {
            rec = rec.key(&k[..]);
        }
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), back)) => {
                    producer.poll(Duration::from_millis(50));
                    rec = back;
                }
                Err((e, _)) => return Err(client("cannot enqueue message", e)),
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(timeout).map_err(|e| client("flush timed out before every message was acknowledged", e))?;
    let ctx = producer.context();
    let failed = ctx.failed.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(KafkaEdgeError::Delivery {
            topic: topic.into(),
            failed,
            total: records.len() as u64,
            first: ctx.first_error.lock().ok().and_then(|f| f.clone()).unwrap_or_default(),
        });
    }
    Ok(ctx.ok.load(Ordering::Relaxed))
}

/// Creates `topic` with `partitions` partitions (replication 1) unless it already exists.
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) -> Result<(), KafkaEdgeError> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let client = |what: &str, source| KafkaEdgeError::Client { brokers: brokers.into(), what: what.into(), source };
    let admin: AdminClient<DefaultClientContext> = client_config(brokers).create().map_err(|e| client("cannot create admin client", e))?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))).request_timeout(Some(Duration::from_secs(30)));
    let res = admin
        .create_topics(&[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &opts)
        .await
        .map_err(|e| client(&format!("cannot create topic {topic:?}"), e))?;
    for r in res {
        match r {
            Ok(_) => {}
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => return Err(client(&format!("cannot create topic {t:?}"), KafkaError::AdminOp(code))),
        }
    }
    Ok(())
}

/// One message handed out by [`BatchReader::poll`], borrowed until the next poll.
#[derive(Debug)]
pub enum Polled<'a> {
    /// A message of the assigned partition.
    Message {
        /// Kafka offset.
        offset: i64,
        /// Create or log-append time (ms), if the broker gave one.
        timestamp: Option<i64>,
        /// Key bytes, if the message has a key.
        key: Option<&'a [u8]>,
        /// Payload bytes (`None` for a null payload: a tombstone).
        payload: Option<&'a [u8]>,
    },
    /// The end of the partition as of now (`enable.partition.eof`).
    PartitionEof,
    /// A consumer error delivered in place of a message.
    Error(String),
    /// Nothing arrived within the timeout.
    Empty,
}

/// Reads a consumer's messages a batch at a time (`rd_kafka_consume_batch_queue`).
///
/// `BaseConsumer::poll` costs, per message, a clock read and an event wrapper on the Rust side
/// and a timeout set-up, a clock read and an application-position update under the partition
/// lock in librdkafka: about a tenth of `etl raw`'s CPU with 240-byte breadcrumbs. One batch
/// call takes everything already queued (what the fetcher thread prefetched) and pays those
/// once; only an empty queue waits, for the first message.
pub struct BatchReader {
    // Released in `Drop::drop`, before `consumer` (a field, dropped after) destroys the client.
    queue: std::ptr::NonNull<rdkafka::bindings::rd_kafka_queue_t>,
    batch: Vec<*mut rdkafka::bindings::rd_kafka_message_t>,
    /// Index in `batch` of the next message to hand out; `batch[..next]` are destroyed except
    /// `batch[next - 1]` while `lent` (handed out by the last poll).
    next: usize,
    lent: bool,
    consumer: BaseConsumer,
}

// SAFETY: the queue handle and the messages are owned by this value alone (no other handle
// refers to them) and librdkafka's queue and message functions may be called from any thread.
unsafe impl Send for BatchReader {}

/// Messages taken per batch call: at most what the prefetch queue holds (2 MiB) is waiting.
const BATCH: usize = 4096;

impl BatchReader {
    /// Reads `consumer`'s messages (it must have a `group.id`: its main queue is then forwarded
    /// to the consumer queue read here).
    pub fn new(consumer: BaseConsumer) -> Result<Self, String> {
        // SAFETY: the client pointer is valid while `consumer` lives; the returned queue holds
        // its own reference and is destroyed in `Drop` before `consumer`.
        let q = unsafe { rdkafka::bindings::rd_kafka_queue_get_consumer(consumer.client().native_ptr()) };
        let queue = std::ptr::NonNull::new(q).ok_or_else(|| "the consumer has no consumer queue (no group.id?)".to_string())?;
        Ok(BatchReader { queue, batch: Vec::with_capacity(BATCH), next: 0, lent: false, consumer })
    }

    /// The consumer (for commits).
    pub fn consumer(&self) -> &BaseConsumer {
        &self.consumer
    }

    /// The next message, waiting up to `timeout` only when nothing is queued.
    pub fn poll(&mut self, timeout: Duration) -> Polled<'_> {
        if self.lent {
            self.lent = false;
            // SAFETY: batch[next - 1] came from librdkafka and has not been destroyed yet.
            unsafe { rdkafka::bindings::rd_kafka_message_destroy(self.batch[self.next - 1]) };
        }
        if self.next == self.batch.len() && !self.refill(timeout) {
            return Polled::Empty;
        }
        let m = self.batch[self.next];
        self.next += 1;
        self.lent = true;
        // SAFETY: `m` is a live message until the next poll or drop (which destroy it), and the
        // borrow of `self` in the returned value ends before either can happen.
        unsafe { view(m) }
    }

    /// Fills `batch` with what is queued, or else with the first message within `timeout`.
    fn refill(&mut self, timeout: Duration) -> bool {
        self.batch.clear();
        self.next = 0;
        let take = |timeout_ms: i32, max: usize, batch: &mut Vec<_>| -> usize {
            // SAFETY: `batch` has capacity for `max` (≤ BATCH) pointers; librdkafka writes
            // exactly the returned count of them, which `set_len` then covers.
            unsafe {
                let n = rdkafka::bindings::rd_kafka_consume_batch_queue(self.queue.as_ptr(), timeout_ms, batch.as_mut_ptr(), max);
                let n = n.max(0) as usize;
                batch.set_len(n.min(max));
                n
            }
        };
        if take(0, BATCH, &mut self.batch) > 0 {
            return true;
        }
        take(timeout.as_millis().min(i32::MAX as u128) as i32, 1, &mut self.batch) > 0
    }
}

/// What a librdkafka message says, borrowed from it.
///
/// # Safety
/// `m` must be a live message; the slices in the result must not outlive it.
unsafe fn view<'a>(m: *mut rdkafka::bindings::rd_kafka_message_t) -> Polled<'a> {
    use rdkafka::bindings as rd;
    let msg = &*m;
    let bytes = |p: *mut std::ffi::c_void, len: usize| -> Option<&'a [u8]> {
        if p.is_null() {
            None
        } else {
            Some(std::slice::from_raw_parts(p as *const u8, len))
        }
    };
    match msg.err {
        rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => {
            let mut kind = rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
            let ts = rd::rd_kafka_message_timestamp(m, &mut kind);
            let timestamp = (kind != rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE).then_some(ts);
            Polled::Message { offset: msg.offset, timestamp, key: bytes(msg.key, msg.key_len), payload: bytes(msg.payload, msg.len) }
        }
        rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__PARTITION_EOF => Polled::PartitionEof,
        e => {
            let name = std::ffi::CStr::from_ptr(rd::rd_kafka_err2str(e)).to_string_lossy();
            let detail = bytes(msg.payload, msg.len).map(String::from_utf8_lossy).unwrap_or_default();
            Polled::Error(if detail.is_empty() { name.into_owned() } else { format!("{name}: {detail}") })
        }
    }
}

impl Drop for BatchReader {
    fn drop(&mut self) {
        let from = if self.lent { self.next - 1 } else { self.next };
        for &m in &self.batch[from..] {
            // SAFETY: messages from `from` on were neither destroyed nor handed out beyond
            // this value's borrow; each is destroyed once.
            unsafe { rdkafka::bindings::rd_kafka_message_destroy(m) };
        }
        self.batch.clear();
        // SAFETY: the queue reference was taken in `new` and is released once, before the client.
        unsafe { rdkafka::bindings::rd_kafka_queue_destroy(self.queue.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_and_sasl_are_built_in() {
        // Managed brokers (Confluent Cloud, MSK, Event Hubs) need SASL_SSL; a librdkafka built
        // without OpenSSL refuses these settings when the client is created.
        let c: Result<BaseConsumer, _> = client_config("127.0.0.1:1")
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanism", "SCRAM-SHA-512")
            .set("sasl.username", "u")
            .set("sasl.password", "p")
            .create();
        assert!(c.is_ok(), "{:?}", c.err());
    }
}

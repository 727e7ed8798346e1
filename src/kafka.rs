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

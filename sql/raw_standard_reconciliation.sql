-- Raw → standard reconciliation: every Kafka message landed in raw is exactly one row in
-- `breadcrumbs` or one row in `rejects`. Per topic and partition: rows, rejects, and the
-- number of distinct offsets (must equal rows + rejects: nothing twice), and the offset span.
-- `etl verify` checks the same books against the raw layer's claims.
SELECT kafka_topic, kafka_partition,
       sum(is_row)                    AS rows,
       sum(1 - is_row)                AS rejects,
       count(*)                       AS accounted,
       count(DISTINCT kafka_offset)   AS distinct_offsets,
       min(kafka_offset)              AS first_offset,
       max(kafka_offset)              AS last_offset
FROM (
    SELECT kafka_topic, kafka_partition, kafka_offset, 1 AS is_row FROM breadcrumbs
    UNION ALL
    SELECT kafka_topic, kafka_partition, kafka_offset, 0 AS is_row FROM rejects
)
GROUP BY kafka_topic, kafka_partition
ORDER BY kafka_topic, kafka_partition;

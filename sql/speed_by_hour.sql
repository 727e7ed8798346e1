-- Average speed by hour of the (local) service day. Speed is computed between consecutive
-- breadcrumbs of the same trip, ordered by time - never across trips - from the odometer.
-- ACT_TIME is seconds after local midnight, so the local hour is act_time / 3600 (mod 24).
SELECT hour_of_day,
       count(*)                          AS segments,
       round(avg(speed_mps), 2)          AS avg_speed_mps,
       round(avg(speed_mps) * 3.6, 1)    AS avg_speed_kmh
FROM (
    SELECT CAST(floor(act_time / 3600) AS BIGINT) % 24 AS hour_of_day,
           (meters - lag(meters) OVER w) / CAST(act_time - lag(act_time) OVER w AS DOUBLE) AS speed_mps
    FROM breadcrumbs
    WINDOW w AS (PARTITION BY service_date, vehicle_id, trip_id ORDER BY act_time)
)
WHERE speed_mps IS NOT NULL AND speed_mps >= 0 AND speed_mps < 40
GROUP BY hour_of_day
ORDER BY hour_of_day;

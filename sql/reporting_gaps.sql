-- Gaps in reporting: consecutive breadcrumbs of one trip more than 60 seconds apart.
-- A healthy bus reports every ~5 s; long gaps point at radio or GPS trouble.
SELECT service_date, vehicle_id, trip_id,
       prev_act_time, act_time,
       act_time - prev_act_time AS gap_s
FROM (
    SELECT service_date, vehicle_id, trip_id, act_time,
           lag(act_time) OVER (PARTITION BY service_date, vehicle_id, trip_id ORDER BY act_time) AS prev_act_time
    FROM breadcrumbs
)
WHERE act_time - prev_act_time > 60
ORDER BY gap_s DESC, service_date, vehicle_id, trip_id, act_time;

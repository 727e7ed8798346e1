-- The ten longest trips by odometer distance, from the archive's trip summaries.
SELECT service_date, vehicle_id, trip_id,
       round(distance_m / 1000.0, 2)  AS distance_km,
       duration_s,
       round(avg_speed_mps * 3.6, 1)  AS avg_speed_kmh,
       round(max_speed_mps * 3.6, 1)  AS max_speed_kmh,
       points
FROM trips
ORDER BY distance_m DESC, trip_id
LIMIT 10;

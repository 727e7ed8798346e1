-- Archive fidelity: what the archival layer kept of each service day, and how trip distances
-- from the trip summaries compare with the full standard layer.
WITH std AS (
    SELECT service_date, count(*) AS standard_rows,
           count(DISTINCT vehicle_id) AS standard_vehicles
    FROM breadcrumbs GROUP BY service_date
), arc AS (
    SELECT service_date, count(*) AS archive_rows FROM archive_breadcrumbs GROUP BY service_date
), full_trips AS (
    SELECT service_date, vehicle_id, trip_id, max(meters) - min(meters) AS distance_m
    FROM breadcrumbs GROUP BY service_date, vehicle_id, trip_id
), trip_err AS (
    SELECT t.service_date,
           count(*) AS summarized_trips,
           max(abs(t.distance_m - f.distance_m)) AS max_distance_error_m
    FROM trips t JOIN full_trips f
      ON t.service_date = f.service_date AND t.vehicle_id = f.vehicle_id AND t.trip_id = f.trip_id
    GROUP BY t.service_date
)
SELECT std.service_date, standard_rows, archive_rows,
       round(CAST(standard_rows AS DOUBLE) / archive_rows, 2) AS row_ratio,
       summarized_trips, max_distance_error_m
FROM std JOIN arc ON std.service_date = arc.service_date
LEFT JOIN trip_err ON std.service_date = trip_err.service_date
ORDER BY std.service_date;

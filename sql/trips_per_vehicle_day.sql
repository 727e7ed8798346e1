-- Trips and distance per vehicle per service day. A trip's distance is the rise of the
-- vehicle's odometer (METERS) over the trip; readings are already one row per breadcrumb.
SELECT service_date,
       vehicle_id,
       count(*)                        AS trips,
       sum(trip_meters)                AS distance_m,
       round(sum(trip_meters) / 1000.0, 1) AS distance_km,
       sum(points)                     AS breadcrumbs
FROM (
    SELECT service_date, vehicle_id, trip_id,
           max(meters) - min(meters) AS trip_meters,
           count(*)                  AS points
    FROM breadcrumbs
    GROUP BY service_date, vehicle_id, trip_id
)
GROUP BY service_date, vehicle_id
ORDER BY service_date, vehicle_id;

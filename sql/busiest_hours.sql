-- Busiest hours: vehicles on the road and breadcrumbs per local hour of the service day.
SELECT CAST(floor(act_time / 3600) AS BIGINT) % 24 AS hour_of_day,
       count(DISTINCT vehicle_id)               AS vehicles,
       count(DISTINCT trip_id)                  AS trips,
       count(*)                                 AS breadcrumbs
FROM breadcrumbs
GROUP BY 1
ORDER BY breadcrumbs DESC, hour_of_day
LIMIT 10;

-- Readings outside the service area (or without a position), per vehicle and day:
-- candidates for GPS faults. Thresholds: README, "Validation rules".
SELECT service_date, vehicle_id,
       sum(CASE WHEN array_has(quality_flags, 'outside_service_area') THEN 1 ELSE 0 END) AS outside_area,
       sum(CASE WHEN array_has(quality_flags, 'missing_position') THEN 1 ELSE 0 END)     AS no_position,
       count(*)                                                                          AS breadcrumbs
FROM breadcrumbs
GROUP BY service_date, vehicle_id
HAVING sum(CASE WHEN array_has(quality_flags, 'outside_service_area') OR array_has(quality_flags, 'missing_position') THEN 1 ELSE 0 END) > 0
ORDER BY service_date, vehicle_id;

-- Data-quality summary: how many records each validation rule caught.
-- Hard rules sent the record to `rejects`; soft rules kept the row in `breadcrumbs`
-- and flagged it in `quality_flags`. Rules and thresholds: README, "Validation rules".
SELECT 'reject' AS kind, rule, count(*) AS records
FROM rejects
GROUP BY rule
UNION ALL
SELECT 'flag' AS kind, flag AS rule, count(*) AS records
FROM (SELECT unnest(quality_flags) AS flag FROM breadcrumbs)
GROUP BY flag
ORDER BY kind, records DESC, rule;

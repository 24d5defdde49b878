-- The content of the batch feature group: each card's 1-week record as of the cutoff (fraudstream/contract.py:
-- "Feature groups"): its transaction count and exact sum on each of the days before the cutoff day, and its
-- last transaction's event time. Runs on DuckDB and Spark SQL.
-- Input: a relation named `features` (the output of batch_features.sql, or any with cc_num, amount,
-- trans_ts). The cutoff day (days since 1970-01-01 UTC) is the day after the newest transaction
-- unless the caller names one (the nightly job: the day it runs); transactions from the cutoff on are left out.
WITH transactions AS (
    SELECT * FROM features
), dated AS (
    SELECT transactions.cc_num AS cc_num, {ms} AS ms, {day} AS day, {cents} AS cents FROM transactions
), cutoff AS (
    {cutoff}
)
SELECT
    dated.cc_num AS cc_num,
    CAST(cutoff.day * {seconds_per_day} AS DOUBLE) AS {trans_time},
    CAST(MAX(dated.ms) AS DOUBLE) / 1000 AS {last_trans_time},
    {day_tiles}
FROM dated CROSS JOIN cutoff
WHERE dated.day < cutoff.day
GROUP BY dated.cc_num, cutoff.day

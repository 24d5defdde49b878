-- Per card, over the last 10 minutes: the transaction count and average amount, the event time
-- of the newest transaction included (this one) and of the card's transaction before it.
-- One aggregate row per transaction; its columns are the aggregate message the aggregate handler reads
-- (fraudstream/online/messages.py parse_aggregate; docs/online-path.md: "The online path").
--
-- The same query runs on Managed Service for Apache Flink (tables_msk.sql) and locally
-- (tables_local.sql). `row_time` is the time attribute the table definitions provide: event
-- time with a watermark, or processing time (docs/streaming.md: "Event time or processing time").
--
-- LAG is refused next to a window frame in Flink 1.20, so the previous transaction comes from
-- a nested ROWS window of two rows: with two rows, the earlier event time is the previous one.
SELECT
    cc_num,
    COUNT(*) OVER last_10m AS num_trans_last_10m,
    AVG(amount) OVER last_10m AS avg_amt_last_10m,
    trans_ts,
    CASE WHEN pair_count = 2 THEN pair_first_ts END AS prev_trans_ts
FROM (
    SELECT
        cc_num,
        amount,
        trans_ts,
        row_time,
        COUNT(*) OVER last_two AS pair_count,
        MIN(trans_ts) OVER last_two AS pair_first_ts
    -- Malformed values are skipped by the JSON format; the rest are held to the contract's rule there.
    FROM valid_transactions
    WINDOW last_two AS (PARTITION BY cc_num ORDER BY row_time ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
)
WINDOW last_10m AS (
    PARTITION BY cc_num ORDER BY row_time RANGE BETWEEN INTERVAL '10' MINUTE PRECEDING AND CURRENT ROW
)

-- The content of the batch feature group: each card's 1-week aggregates as of its last
-- transaction, with that transaction's event time. Runs on DuckDB and Spark SQL.
-- Input: a relation named `features`, the output of batch_features.sql. Transactions that
-- share the card's last timestamp have equal 1-week aggregates (RANGE peers), so max_by
-- picks the same values whichever of them it meets.
SELECT
    cc_num,
    max_by({num_trans_last_1w}, trans_ts) AS {num_trans_last_1w},
    max_by({avg_amt_last_1w}, trans_ts) AS {avg_amt_last_1w},
    max(trans_ts) AS {trans_time}
FROM features
GROUP BY cc_num

-- Per-transaction features of each card's history on event time, the transaction included.
-- Runs unchanged on DuckDB (fraudstream features) and Spark SQL (SageMaker Processing).
-- Input: a relation named `transactions` with at least cc_num, amount and trans_ts (event time,
-- epoch seconds; each engine's wrapper derives it from datetime). Its columns pass through.
-- Placeholders in braces are filled from fraudstream.contract, the ratio rule included.
--
-- RANGE frames count every transaction within the window of this one's event time, so
-- transactions with equal timestamps see each other (both are "the last 10 minutes").
-- For the same reason a transaction that shares its timestamp with another of the card's has
-- 0 seconds since the previous one.
SELECT
    aggregated.*,
    {ratio_columns}
FROM (
    SELECT
        transactions.*,
        COUNT(*) OVER w_10m AS {num_trans_last_10m},
        AVG(amount) OVER w_10m AS {avg_amt_last_10m},
        COUNT(*) OVER w_1w AS {num_trans_last_1w},
        AVG(amount) OVER w_1w AS {avg_amt_last_1w},
        CASE
            WHEN LEAD(trans_ts) OVER w_card = trans_ts THEN 0.0
            ELSE LEAST(COALESCE(trans_ts - LAG(trans_ts) OVER w_card, {secs_cap}), {secs_cap})
        END AS {secs_since_prev_tx}
    FROM transactions
    WINDOW
        w_card AS (PARTITION BY cc_num ORDER BY trans_ts),
        w_10m AS (PARTITION BY cc_num ORDER BY trans_ts RANGE BETWEEN {window_10m} PRECEDING AND CURRENT ROW),
        w_1w AS (PARTITION BY cc_num ORDER BY trans_ts RANGE BETWEEN {window_1w} PRECEDING AND CURRENT ROW)
) AS aggregated

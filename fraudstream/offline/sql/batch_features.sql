-- Per-transaction features of each card's history on event time, the transaction included.
-- Runs unchanged on DuckDB (fraudstream features) and Spark SQL (SageMaker Processing).
-- Input: a relation named `transactions` with at least cc_num, amount, trans_ts (event time, epoch
-- seconds; each engine's wrapper derives it from datetime) and tid (the order of one card's transactions
-- of one millisecond; `fraudstream consistency` gives archived ones their offset in the topic). Its
-- columns pass through. Placeholders in braces are filled from fraudstream.contract.
--
-- The definition Flink serves (flink_sql/features_in_order.sql; fraudstream/contract.py: "Event time and
-- order"): event time in whole milliseconds ({ms}), a card's transactions in (event time, tid) order, each
-- window holding the transaction and the ones before it. RANGE frames take every peer of one millisecond,
-- so the peers after this one are taken out again; sums are exact decimals ({cents}) and averages their
-- double divided by the count, as Flink's message carries them and the handlers divide.
--
-- The week is what the online store serves exactly (docs/online-path.md: "The 1-week features"): the 7 full
-- UTC days before the transaction's day, plus the card's transactions of its own day up to this one.
WITH daily AS (
    SELECT cc_num, {day} AS day, COUNT(*) AS n, SUM({cents}) AS s FROM transactions GROUP BY cc_num, {day}
), prior_week AS (
    SELECT cc_num, day, SUM(n) OVER w AS prior_n, SUM(s) OVER w AS prior_s
    FROM daily
    WINDOW w AS (PARTITION BY cc_num ORDER BY day RANGE BETWEEN 7 PRECEDING AND 1 PRECEDING)
)
SELECT
    aggregated.*,
    {ratio_columns}
FROM (
    SELECT
        transactions.*,
        COUNT(*) OVER w_10m - (COUNT(*) OVER w_peers - ROW_NUMBER() OVER w_peers_in_order) AS {num_trans_last_10m},
        CAST(SUM({cents}) OVER w_10m - (SUM({cents}) OVER w_peers - SUM({cents}) OVER w_peers_so_far) AS DOUBLE)
            / (COUNT(*) OVER w_10m - (COUNT(*) OVER w_peers - ROW_NUMBER() OVER w_peers_in_order)) AS {avg_amt_last_10m},
        CAST(COALESCE(prior_week.prior_n, 0) + COUNT(*) OVER w_today AS BIGINT) AS {num_trans_last_1w},
        CAST(COALESCE(prior_week.prior_s, 0) + SUM({cents}) OVER w_today AS DOUBLE)
            / (COALESCE(prior_week.prior_n, 0) + COUNT(*) OVER w_today) AS {avg_amt_last_1w},
        LEAST(COALESCE(CAST({ms} - LAG({ms}) OVER w_card AS DOUBLE) / 1000, {secs_cap}), {secs_cap}) AS {secs_since_prev_tx}
    FROM transactions
    JOIN prior_week ON prior_week.cc_num = transactions.cc_num AND prior_week.day = {day}
    WINDOW
        w_card AS (PARTITION BY transactions.cc_num ORDER BY {ms}, tid),
        w_peers AS (PARTITION BY transactions.cc_num, {ms}),
        w_peers_in_order AS (PARTITION BY transactions.cc_num, {ms} ORDER BY tid),
        w_peers_so_far AS (PARTITION BY transactions.cc_num, {ms} ORDER BY tid ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
        w_10m AS (PARTITION BY transactions.cc_num ORDER BY {ms} RANGE BETWEEN {window_10m_ms} PRECEDING AND CURRENT ROW),
        w_today AS (PARTITION BY transactions.cc_num, {day} ORDER BY {ms}, tid
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
) AS aggregated

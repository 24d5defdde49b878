-- Each on-time valid transaction with its card's streaming features, in order: per card by event time
-- (milliseconds), then by arrival (for one card, its partition's offset order), each window holding the
-- transaction and the ones before it, never a later one of the same millisecond. The batch SQL
-- (fraudstream/offline/sql/batch_features.sql) computes the same definition for training.
--
-- Flink 1.20 allows one window per OVER level, and LAG is refused beside a window frame, so the columns are
-- built in nested levels, innermost first:
--   1. per card and UTC day, ROWS: the day's count and sum so far (this transaction included);
--   2. per card, the last two ROWS: the previous transaction's time, day and day totals (SUM minus this row);
--   3. per card and day, ROWS: the day before's full totals, carried from the day's first transaction;
--   4. per card, RANGE 10 minutes: count and sum, same-millisecond peers included ...
--   5. ... and 6.: minus the peers that come after this one (RANGE UNBOUNDED counts every peer,
--      ROWS UNBOUNDED only those before it), so equal event times count one after another.
SELECT
    cc_num, merchant, amount, zip_code, trans_ts, tid, event_ms,
    range_n - (peers_n - before_n) AS num_trans_last_10m,
    range_s - (peers_s - before_s) AS amt_sum_last_10m,
    CASE WHEN pair_n = 2 THEN prev_ms END AS prev_event_ms,
    day_n AS num_trans_today,
    day_s AS amt_sum_today,
    yesterday_n AS num_trans_yesterday,
    yesterday_s AS amt_sum_yesterday,
    FALSE AS late,
    kafka_topic AS topic,
    kafka_partition AS `partition`,
    kafka_offset AS `offset`
FROM (
  SELECT *, COUNT(*) OVER w AS before_n, SUM(amount) OVER w AS before_s FROM (
    SELECT *, COUNT(*) OVER w AS peers_n, SUM(amount) OVER w AS peers_s FROM (
      SELECT *, COUNT(*) OVER w AS range_n, SUM(amount) OVER w AS range_s FROM (
        SELECT *,
            MAX(CASE WHEN day_n = 1 THEN (CASE WHEN pair_n = 2 AND prev_day = tx_day - 1 THEN prev_day_n ELSE 0 END) END)
                OVER w AS yesterday_n,
            MAX(CASE WHEN day_n = 1 THEN (CASE WHEN pair_n = 2 AND prev_day = tx_day - 1 THEN prev_day_s ELSE 0 END) END)
                OVER w AS yesterday_s
        FROM (
          SELECT *,
              COUNT(*) OVER w AS pair_n,
              SUM(event_ms) OVER w - event_ms AS prev_ms,
              SUM(tx_day) OVER w - tx_day AS prev_day,
              SUM(day_n) OVER w - day_n AS prev_day_n,
              SUM(day_s) OVER w - day_s AS prev_day_s
          FROM (
            SELECT *, COUNT(*) OVER w AS day_n, SUM(amount) OVER w AS day_s
            FROM (SELECT *, event_ms / {ms_per_day} AS tx_day FROM {parsed} WHERE invalid_reason IS NULL AND on_time)
            WINDOW w AS (PARTITION BY cc_num, tx_day ORDER BY row_time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
          ) WINDOW w AS (PARTITION BY cc_num ORDER BY row_time ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
        ) WINDOW w AS (PARTITION BY cc_num, tx_day ORDER BY row_time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
      ) WINDOW w AS (PARTITION BY cc_num ORDER BY row_time RANGE BETWEEN INTERVAL '10' MINUTE PRECEDING AND CURRENT ROW)
    ) WINDOW w AS (PARTITION BY cc_num ORDER BY row_time RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
  ) WINDOW w AS (PARTITION BY cc_num ORDER BY row_time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)

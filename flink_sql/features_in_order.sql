-- Each on-time valid transaction with its card's streaming features, in order: per card by event time
-- (milliseconds), then by arrival (for one card, its partition's offset order), each window holding the
-- transaction and the ones before it, never a later one of the same millisecond. The batch SQL
-- (fraudstream/offline/sql/batch_features.sql) computes the same definition for training.
--
-- Flink 1.20 allows one window per OVER level, and LAG is refused beside a window frame, so the columns are
-- built in nested levels, innermost first:
--   1. per card, the last two ROWS: the previous transaction's time;
--   2. per card, RANGE 8 days: the count and sum of each UTC day the window touches, in nine buckets by day
--      number modulo 9 (an aggregate cannot see the current row, so the buckets are absolute): the window holds
--      the 7 days before the transaction's day whole, its own day so far and part of the 8th day before, nine
--      days, each in its own bucket;
--   3. per card, RANGE 10 minutes: count and sum;
--   4. and 5.: the same-millisecond peers that come after this one (RANGE UNBOUNDED counts every peer, ROWS
--      UNBOUNDED only those before it), taken off the 10-minute and the day's values (both RANGE windows
--      count every peer), so equal event times count one after another.
SELECT
    cc_num, merchant, amount, zip_code, trans_ts, tid, event_ms,
    range_n - later_n AS num_trans_last_10m,
    range_s - later_s AS amt_sum_last_10m,
    CASE WHEN pair_n = 2 THEN prev_ms END AS prev_event_ms,
    day_n[today + 1] - later_n AS num_trans_today,
    day_s[today + 1] - later_s AS amt_sum_today,
    -- the 1st to the 7th day before the transaction's day: the bucket of day - k is (today + 9 - k) mod 9
    ARRAY[day_n[MOD(today + 8, 9) + 1], day_n[MOD(today + 7, 9) + 1], day_n[MOD(today + 6, 9) + 1],
          day_n[MOD(today + 5, 9) + 1], day_n[MOD(today + 4, 9) + 1], day_n[MOD(today + 3, 9) + 1],
          day_n[MOD(today + 2, 9) + 1]] AS num_trans_days_before,
    ARRAY[day_s[MOD(today + 8, 9) + 1], day_s[MOD(today + 7, 9) + 1], day_s[MOD(today + 6, 9) + 1],
          day_s[MOD(today + 5, 9) + 1], day_s[MOD(today + 4, 9) + 1], day_s[MOD(today + 3, 9) + 1],
          day_s[MOD(today + 2, 9) + 1]] AS amt_sum_days_before,
    FALSE AS late,
    kafka_topic AS topic,
    kafka_partition AS `partition`,
    kafka_offset AS `offset`
FROM (
  SELECT *,
      CAST(MOD(tx_day, 9) AS INT) AS today,  -- the bucket of the transaction's day (arrays count from 1)
      peers_n - before_n AS later_n,
      peers_s - before_s AS later_s,
      ARRAY[n0, n1, n2, n3, n4, n5, n6, n7, n8] AS day_n,
      ARRAY[s0, s1, s2, s3, s4, s5, s6, s7, s8] AS day_s
  FROM (
    SELECT *, COUNT(*) OVER w AS before_n, SUM(amount) OVER w AS before_s FROM (
      SELECT *, COUNT(*) OVER w AS peers_n, SUM(amount) OVER w AS peers_s FROM (
        SELECT *, COUNT(*) OVER w AS range_n, SUM(amount) OVER w AS range_s FROM (
          SELECT *,
              COUNT(CASE WHEN MOD(tx_day, 9) = 0 THEN 1 END) OVER w AS n0,
              COUNT(CASE WHEN MOD(tx_day, 9) = 1 THEN 1 END) OVER w AS n1,
              COUNT(CASE WHEN MOD(tx_day, 9) = 2 THEN 1 END) OVER w AS n2,
              COUNT(CASE WHEN MOD(tx_day, 9) = 3 THEN 1 END) OVER w AS n3,
              COUNT(CASE WHEN MOD(tx_day, 9) = 4 THEN 1 END) OVER w AS n4,
              COUNT(CASE WHEN MOD(tx_day, 9) = 5 THEN 1 END) OVER w AS n5,
              COUNT(CASE WHEN MOD(tx_day, 9) = 6 THEN 1 END) OVER w AS n6,
              COUNT(CASE WHEN MOD(tx_day, 9) = 7 THEN 1 END) OVER w AS n7,
              COUNT(CASE WHEN MOD(tx_day, 9) = 8 THEN 1 END) OVER w AS n8,
              SUM(CASE WHEN MOD(tx_day, 9) = 0 THEN amount ELSE 0 END) OVER w AS s0,
              SUM(CASE WHEN MOD(tx_day, 9) = 1 THEN amount ELSE 0 END) OVER w AS s1,
              SUM(CASE WHEN MOD(tx_day, 9) = 2 THEN amount ELSE 0 END) OVER w AS s2,
              SUM(CASE WHEN MOD(tx_day, 9) = 3 THEN amount ELSE 0 END) OVER w AS s3,
              SUM(CASE WHEN MOD(tx_day, 9) = 4 THEN amount ELSE 0 END) OVER w AS s4,
              SUM(CASE WHEN MOD(tx_day, 9) = 5 THEN amount ELSE 0 END) OVER w AS s5,
              SUM(CASE WHEN MOD(tx_day, 9) = 6 THEN amount ELSE 0 END) OVER w AS s6,
              SUM(CASE WHEN MOD(tx_day, 9) = 7 THEN amount ELSE 0 END) OVER w AS s7,
              SUM(CASE WHEN MOD(tx_day, 9) = 8 THEN amount ELSE 0 END) OVER w AS s8
          FROM (
            SELECT *, COUNT(*) OVER w AS pair_n, SUM(event_ms) OVER w - event_ms AS prev_ms
            FROM (SELECT *, event_ms / {ms_per_day} AS tx_day FROM {parsed} WHERE invalid_reason IS NULL AND on_time)
            WINDOW w AS (PARTITION BY cc_num ORDER BY row_time ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
          ) WINDOW w AS (PARTITION BY cc_num ORDER BY row_time RANGE BETWEEN INTERVAL '8' DAY PRECEDING AND CURRENT ROW)
        ) WINDOW w AS (PARTITION BY cc_num ORDER BY row_time RANGE BETWEEN INTERVAL '10' MINUTE PRECEDING AND CURRENT ROW)
      ) WINDOW w AS (PARTITION BY cc_num ORDER BY row_time RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    ) WINDOW w AS (PARTITION BY cc_num ORDER BY row_time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
  )
)

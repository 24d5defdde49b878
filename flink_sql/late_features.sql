-- Valid transactions that came behind the watermark (a slow producer, a clock ahead by more than the
-- tolerance): the windows of the on-time ones have passed them, so each is emitted at once with the features
-- of itself alone and marked late; the predict function scores it, flags it in its verdict and counts it.
SELECT
    cc_num, merchant, amount, zip_code, trans_ts, tid, event_ms,
    CAST(1 AS BIGINT) AS num_trans_last_10m,
    CAST(amount AS DECIMAL(38, 2)) AS amt_sum_last_10m,
    CAST(NULL AS BIGINT) AS prev_event_ms,
    CAST(1 AS BIGINT) AS num_trans_today,
    CAST(amount AS DECIMAL(38, 2)) AS amt_sum_today,
    ARRAY[CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT)] AS num_trans_days_before,
    ARRAY[CAST(0 AS DECIMAL(38, 2)), CAST(0 AS DECIMAL(38, 2)), CAST(0 AS DECIMAL(38, 2)), CAST(0 AS DECIMAL(38, 2)), CAST(0 AS DECIMAL(38, 2)), CAST(0 AS DECIMAL(38, 2)), CAST(0 AS DECIMAL(38, 2))] AS amt_sum_days_before,
    TRUE AS late,
    kafka_topic AS topic,
    kafka_partition AS `partition`,
    kafka_offset AS `offset`
FROM {parsed}
WHERE invalid_reason IS NULL AND NOT on_time

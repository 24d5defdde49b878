-- {view} over {source}: the records of the transactions topic, typed, with why each fails the contract's
-- rule ({invalid_reason}, NULL when it passes: fraudstream/contract.py, which the handlers and the scenario
-- reader apply too) and whether it came on time. The source reads the fields as text, because Flink's JSON
-- format would read "12.5" and 12.5 alike as a number and truncate a card number of 4111.5; here both are
-- held to the contract's syntax, then typed. Amounts are taken to the cent, as the batch data holds them.
--
-- on_time: ahead of the watermark when read. An event-time OVER window drops rows behind it without a
-- trace; those rows go to late_features.sql instead and are scored on themselves, marked late. The time
-- ticks (ticks.sql) are left out here, after the watermark has taken them.
CREATE TEMPORARY VIEW {view} AS
SELECT
    TRY_CAST(cc_num AS BIGINT) AS cc_num,
    TRY_CAST(amount AS DECIMAL(12, 2)) AS amount,
    TRY_CAST(trans_ts AS DOUBLE) AS trans_ts,
    SUBSTRING(tid, 1, 64) AS tid,
    SUBSTRING(merchant, 1, 100) AS merchant,
    SUBSTRING(zip_code, 1, 20) AS zip_code,
    {event_ms} AS event_ms,
    kafka_topic,
    kafka_partition,
    kafka_offset,
    row_time,
    proc,
    {invalid_reason} AS invalid_reason,
    row_time > TO_TIMESTAMP_LTZ(0, 3)
        AND (CURRENT_WATERMARK(row_time) IS NULL OR row_time > CURRENT_WATERMARK(row_time)) AS on_time
FROM {source}
WHERE NOT ({is_tick});

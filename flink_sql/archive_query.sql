SELECT
    cc_num,
    amount,
    trans_ts,
    tid,
    kafka_topic AS topic,
    kafka_partition AS `partition`,
    kafka_offset AS `offset`,
    DATE_FORMAT(TO_TIMESTAMP_LTZ(event_ms, 3), 'yyyy-MM-dd') AS dt
FROM parsed_to_archive
WHERE invalid_reason IS NULL

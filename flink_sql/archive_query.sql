SELECT
    cc_num,
    amount,
    trans_ts,
    tid,
    kafka_topic AS topic,
    kafka_partition AS `partition`,
    kafka_offset AS `offset`,
    DATE_FORMAT(TO_TIMESTAMP_LTZ(CAST(trans_ts * 1000 AS BIGINT), 3), 'yyyy-MM-dd') AS dt
FROM valid_transactions_to_archive

-- Every transaction read from the topic, as JSON lines under {archive_path}/dt=YYYY-MM-DD/ (UTC day):
-- the nightly batch job's input. Files roll every 15 minutes and are committed at checkpoints.
CREATE TABLE transactions_archive (
    cc_num BIGINT,
    amount DECIMAL(12, 2),
    trans_ts DOUBLE,
    dt STRING
) PARTITIONED BY (dt) WITH (
    'connector' = 'filesystem',
    'path' = '{archive_path}',
    'format' = 'json',
    'sink.rolling-policy.rollover-interval' = '15 min',
    'sink.partition-commit.trigger' = 'process-time',
    'sink.partition-commit.policy.kind' = 'success-file'
);

-- Every transaction read from the topic, as JSON lines under {archive_path}/dt=YYYY-MM-DD/ (UTC day):
-- the nightly batch job's input, and what `fraudstream consistency` recomputes the features of. Each line
-- names its place in the topic (topic, partition, offset), as every verdict does. Files roll every
-- archive.rollover.seconds (15 minutes on AWS) and are committed at checkpoints.
-- The archive reads the topic through its own source, as its own consumer group ({archive_group}): the
-- job graph is then two pipelines, and Flink's region failover restarts only the one that failed, so
-- an archive that cannot write (S3 unreachable, access denied) never restarts the features.
-- Every valid transaction is archived, late ones included; its day is the UTC day of its event_ms.
CREATE TABLE transactions_to_archive WITH ('properties.group.id' = '{archive_group}') LIKE transactions;
CREATE TABLE transactions_archive (
    cc_num BIGINT,
    amount DECIMAL(12, 2),
    trans_ts DOUBLE,
    tid STRING,
    topic STRING,
    `partition` INT,
    `offset` BIGINT,
    dt STRING
) PARTITIONED BY (dt) WITH (
    'connector' = 'filesystem',
    'path' = '{archive_path}',
    'format' = 'json',
    'sink.rolling-policy.rollover-interval' = '{rollover}',
    'sink.rolling-policy.check-interval' = '{check}',
    'sink.partition-commit.trigger' = 'process-time',
    'sink.partition-commit.policy.kind' = 'success-file'
);

-- The local stand-ins for the two topics: directories of JSON-lines files. Flink watches the
-- transactions directory for new files, and writes aggregates as files that appear, whole, at
-- each checkpoint. Values in braces come from the local runner (main.py --local).
CREATE TABLE transactions (
    cc_num BIGINT,
    amount DECIMAL(12, 2),
    trans_ts DOUBLE,
    {time_attribute}
) WITH (
    'connector' = 'filesystem',
    'path' = '{transactions_path}',
    'format' = 'json',
    'json.ignore-parse-errors' = 'true',
    'json.fail-on-missing-field' = 'false'{monitor}
);

CREATE TABLE aggregates (
    cc_num BIGINT,
    num_trans_last_10m BIGINT,
    avg_amt_last_10m DECIMAL(38, 6),
    trans_ts DOUBLE,
    prev_trans_ts DOUBLE
) WITH (
    'connector' = 'filesystem',
    'path' = '{aggregates_path}',
    'format' = 'json',
    'json.encode.decimal-as-plain-number' = 'true',
    'sink.rolling-policy.rollover-interval' = '{roll_interval}',
    'sink.rolling-policy.inactivity-interval' = '{roll_interval}',
    'sink.rolling-policy.check-interval' = '{roll_interval}'
);

-- The Kafka tables, the same on Amazon MSK and on the local broker. Values in braces come from the
-- application's runtime properties (main.py); only the client security options differ between the two
-- places ({security}: IAM over TLS on MSK, plaintext on loopback), and main.py renders them too.
CREATE TABLE transactions (
    -- As text: transactions_parsed.sql checks and types them.
    cc_num STRING,
    amount STRING,
    trans_ts STRING,
    tid STRING,
    merchant STRING,
    zip_code STRING,
    -- Set only on the time ticks this job writes to the topic itself (ticks.sql).
    tick_ms STRING,
    -- Where the record sits: every output message carries it, as every verdict does.
    kafka_topic STRING METADATA FROM 'topic' VIRTUAL,
    kafka_partition INT METADATA FROM 'partition' VIRTUAL,
    kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
    -- Event time in milliseconds ({row_ms}: a transaction's event_ms, a tick's tick_ms, or 0 when neither is
    -- usable or it is ahead of this machine's clock by more than {future_tolerance_ms} ms; a row at 0 never moves
    -- the watermark). The watermark trails the newest row by 1 ms (peers of one millisecond are not late) plus
    -- the configured out-of-orderness.
    row_time AS TO_TIMESTAMP_LTZ({row_ms}, 3),
    proc AS PROCTIME(),
    WATERMARK FOR row_time AS row_time - {watermark_delay}
) WITH (
    'connector' = 'kafka',
    'topic' = '{transactions_topic}',
    'properties.bootstrap.servers' = '{bootstrap_servers}',
    'properties.group.id' = '{consumer_group}',{security}
    'scan.startup.mode' = 'group-offsets',
    'properties.auto.offset.reset' = '{auto_offset_reset}',{bounded}
    'format' = 'json',
    -- Values that are not JSON objects are skipped here and reported by the unparsed source below.
    'json.ignore-parse-errors' = 'true',
    'json.fail-on-missing-field' = 'false'
);

-- The same records as bytes, through their own consumer group: what the JSON source above skips (not JSON,
-- not an object, no value) is found here and reported on the invalid-transactions topic.
CREATE TABLE transactions_unparsed (
    `value` STRING,
    kafka_topic STRING METADATA FROM 'topic' VIRTUAL,
    kafka_partition INT METADATA FROM 'partition' VIRTUAL,
    kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL
) WITH (
    'connector' = 'kafka',
    'topic' = '{transactions_topic}',
    'properties.bootstrap.servers' = '{bootstrap_servers}',
    'properties.group.id' = '{unparsed_group}',{security}
    'scan.startup.mode' = 'group-offsets',
    'properties.auto.offset.reset' = '{auto_offset_reset}',{bounded}
    'format' = 'raw'
);

-- Each valid transaction with its own streaming features (fraudstream/contract.py FEATURE_MESSAGE_FIELDS),
-- keyed by card: what both handlers read.
CREATE TABLE transaction_features (
    cc_num BIGINT,
    merchant STRING,
    amount DECIMAL(12, 2),
    zip_code STRING,
    trans_ts DOUBLE,
    tid STRING,
    event_ms BIGINT,
    num_trans_last_10m BIGINT,
    amt_sum_last_10m DECIMAL(38, 2),
    prev_event_ms BIGINT,
    num_trans_today BIGINT,
    amt_sum_today DECIMAL(38, 2),
    num_trans_days_before ARRAY<BIGINT>,
    amt_sum_days_before ARRAY<DECIMAL(38, 2)>,
    late BOOLEAN,
    topic STRING,
    `partition` INT,
    `offset` BIGINT
) WITH (
    'connector' = 'kafka',
    'topic' = '{features_topic}',
    'properties.bootstrap.servers' = '{bootstrap_servers}',{security}
    'key.format' = 'json',
    'key.fields' = 'cc_num',
    'value.format' = 'json',
    'value.fields-include' = 'ALL',
    'value.json.encode.decimal-as-plain-number' = 'true',
    'sink.delivery-guarantee' = 'at-least-once'
);

-- Every record the job refuses: its place and the reason, never its content.
CREATE TABLE invalid_transactions (
    topic STRING,
    `partition` INT,
    `offset` BIGINT,
    reason STRING
) WITH (
    'connector' = 'kafka',
    'topic' = '{invalid_topic}',
    'properties.bootstrap.servers' = '{bootstrap_servers}',{security}
    'format' = 'json',
    'sink.delivery-guarantee' = 'at-least-once'
);

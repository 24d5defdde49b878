-- The two topics as Kafka tables, the same on Amazon MSK and on the local broker. Values in braces
-- come from the application's runtime properties (main.py); only the client security options
-- differ between the two places ({security}: IAM over TLS on MSK, plaintext on loopback), and
-- main.py renders them from the properties too: nothing here is edited by hand.
CREATE TABLE transactions (
    -- As text: valid_transactions.sql checks and types them.
    cc_num STRING,
    amount STRING,
    trans_ts STRING,
    tid STRING,
    -- Where the record sits: the archive keeps it, as every verdict does (fraudstream consistency joins on it).
    kafka_topic STRING METADATA FROM 'topic' VIRTUAL,
    kafka_partition INT METADATA FROM 'partition' VIRTUAL,
    kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
    {time_attribute}
) WITH (
    'connector' = 'kafka',
    'topic' = '{transactions_topic}',
    'properties.bootstrap.servers' = '{bootstrap_servers}',
    'properties.group.id' = '{consumer_group}',{security}
    'scan.startup.mode' = 'group-offsets',
    'properties.auto.offset.reset' = '{auto_offset_reset}',{bounded}
    'format' = 'json',
    'json.ignore-parse-errors' = 'true',
    'json.fail-on-missing-field' = 'false'
);

CREATE TABLE aggregates (
    cc_num BIGINT,
    num_trans_last_10m BIGINT,
    avg_amt_last_10m DECIMAL(38, 6),
    trans_ts DOUBLE,
    prev_trans_ts DOUBLE
) WITH (
    'connector' = 'kafka',
    'topic' = '{aggregates_topic}',
    'properties.bootstrap.servers' = '{bootstrap_servers}',{security}
    'key.format' = 'json',
    'key.fields' = 'cc_num',
    'value.format' = 'json',
    'value.fields-include' = 'ALL',
    'value.json.encode.decimal-as-plain-number' = 'true',
    'sink.delivery-guarantee' = 'at-least-once'
);

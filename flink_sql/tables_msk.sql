-- Amazon MSK topics, IAM authentication over TLS. Values in braces come from the application's
-- runtime properties (main.py); nothing here is edited by hand.
CREATE TABLE transactions (
    cc_num BIGINT,
    amount DECIMAL(12, 2),
    trans_ts DOUBLE,
    {time_attribute}
) WITH (
    'connector' = 'kafka',
    'topic' = '{transactions_topic}',
    'properties.bootstrap.servers' = '{bootstrap_servers}',
    'properties.group.id' = '{consumer_group}',
    'properties.security.protocol' = 'SASL_SSL',
    'properties.sasl.mechanism' = 'AWS_MSK_IAM',
    'properties.sasl.jaas.config' = 'software.amazon.msk.auth.iam.IAMLoginModule required;',
    'properties.sasl.client.callback.handler.class' = 'software.amazon.msk.auth.iam.IAMClientCallbackHandler',
    'scan.startup.mode' = 'group-offsets',
    'properties.auto.offset.reset' = 'latest',
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
    'properties.bootstrap.servers' = '{bootstrap_servers}',
    'properties.security.protocol' = 'SASL_SSL',
    'properties.sasl.mechanism' = 'AWS_MSK_IAM',
    'properties.sasl.jaas.config' = 'software.amazon.msk.auth.iam.IAMLoginModule required;',
    'properties.sasl.client.callback.handler.class' = 'software.amazon.msk.auth.iam.IAMClientCallbackHandler',
    'key.format' = 'json',
    'key.fields' = 'cc_num',
    'value.format' = 'json',
    'value.fields-include' = 'ALL',
    'sink.delivery-guarantee' = 'at-least-once'
);

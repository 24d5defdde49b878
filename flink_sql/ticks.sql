-- Time ticks: event time moves only with new rows, so on a quiet stream the last transactions would wait
-- for the next one to be scored. Every {interval_ms} ms of processing time in which transactions arrived,
-- this writes {{"tick_ms": newest event time + 1}} to every partition of the transactions topic (one key per
-- partition, {keys}, chosen by main.py's caller so that Kafka's default partitioner maps each to its own
-- partition). The source takes a tick's time as its row time, the watermark passes the newest transaction, and
-- its features are emitted; transactions_parsed.sql then leaves the tick out. A tick comes after everything
-- already in its partition, so a backlog or a replay of old event times is read before its tick: never late.
CREATE TABLE time_ticks (
    tick_key STRING,
    tick_ms BIGINT
) WITH (
    'connector' = 'kafka',
    'topic' = '{transactions_topic}',
    'properties.bootstrap.servers' = '{bootstrap_servers}',{security}
    'key.format' = 'raw',
    'key.fields' = 'tick_key',
    'value.format' = 'json',
    'value.fields-include' = 'EXCEPT_KEY',
    'sink.partitioner' = 'default',
    'sink.delivery-guarantee' = 'at-least-once'
);
INSERT INTO time_ticks
SELECT k.tick_key, t.newest_ms + 1
FROM (
    SELECT MAX(event_ms) AS newest_ms
    FROM TABLE(TUMBLE(TABLE {parsed}, DESCRIPTOR(proc), INTERVAL '{interval_seconds}' SECOND))
    WHERE invalid_reason IS NULL AND on_time
    GROUP BY window_start, window_end
) AS t
CROSS JOIN (VALUES {key_rows}) AS k(tick_key);

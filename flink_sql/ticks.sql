-- Time ticks: event time moves only with new rows, so on a quiet stream the last transactions would wait
-- for the next one to be scored. For every {interval_seconds} s of processing time in which transactions were
-- read, this writes {{"tick_ms": newest event time + 1 + {tolerance_ms}}} (max.out.of.orderness.seconds in ms,
-- by which the watermark trails a row) to every partition of the transactions topic (one key per partition,
-- {keys}, chosen by main.py's caller so that Kafka's default partitioner maps each to its own partition). The
-- source takes a tick's time as its row time, the watermark passes the newest transaction, and its features are
-- emitted; transactions_parsed.sql then leaves the tick out. A tick comes after everything already in its
-- partition, so a backlog or a replay of old event times is read before its tick: never late.
--
-- A tick is written tick.delay.ms after the transactions it passes were read (or the out-of-orderness, if
-- longer: fraudstream/flink_properties.py tick_write_delay_ms), not at once: a producer's burst lands on its
-- partitions in any order, and an earlier-stamped transaction that reaches its partition after a tick stamped
-- later than itself would be late (scored on itself alone). So each slice of {interval_seconds} s carries the newest
-- event time read up to its end (tick_slices), and the HOP windows ({window_seconds} s, sliding by a slice) over
-- the slices' arrival write it: read_at is a processing-time attribute, so MIN(CAST(read_at ...)) is when the
-- earliest row reached this query, and a window writes only when that is before the end of its first slice, that
-- delay before the window closes. Its least value is that earliest row's, since the value never decreases. A
-- window that no row opens writes nothing. A row held up on its way (a loaded machine) is timed before the
-- exchange and placed in windows after it, so it opens every window it reaches: written late, and up to
-- {window_seconds} / {interval_seconds} times, never lost (a tick written again moves nothing). That holds
-- because both ends read one clock: each is a single subtask, and Flink's default slot sharing puts them in one
-- slot.
--
-- The keys come from an UNNEST of an array carried by each row: stateless. A join with a VALUES table would
-- hold its key rows, and every tick, in state that expires with table.exec.state.ttl (8 days): no tick after that.
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
CREATE TEMPORARY VIEW tick_slices AS
SELECT MAX(newest_ms) OVER (ORDER BY read_at ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS newest_ms, read_at
FROM (
    SELECT MAX(event_ms) AS newest_ms, window_time AS read_at
    FROM TABLE(TUMBLE(TABLE {parsed}, DESCRIPTOR(proc), INTERVAL '{interval_seconds}' SECOND))
    WHERE invalid_reason IS NULL AND on_time
    GROUP BY window_start, window_end, window_time
);
INSERT INTO time_ticks
SELECT k.tick_key, t.tick_ms
FROM (
    SELECT MIN(newest_ms) + 1 + {tolerance_ms} AS tick_ms, ARRAY[{key_array}] AS tick_keys
    FROM TABLE(HOP(TABLE tick_slices, DESCRIPTOR(read_at), INTERVAL '{interval_seconds}' SECOND,
                   INTERVAL '{window_seconds}' SECOND))
    GROUP BY window_start, window_end
    HAVING MIN(CAST(read_at AS TIMESTAMP_LTZ(3))) < window_start + INTERVAL '{interval_seconds}' SECOND
) AS t
CROSS JOIN UNNEST(t.tick_keys) AS k(tick_key);

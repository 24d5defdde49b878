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
-- later than itself would be late (scored on itself alone). So each slice of {interval_seconds} s of reading gives
-- one row (tick_slices): the newest event time read in it and the slice's end, slice_end. The HOP windows
-- ({window_seconds} s, sliding by a slice) hold each row by the time it reaches them, and a window writes the row's
-- time for each row whose slice ended by the end of the window's first slice: the window closes the delay after
-- that, so no tick comes early. The slice's timer fires a millisecond before its end, so a row can reach the
-- windows before its slice_end: the window that starts a slice before slice_end takes it then (and, when it
-- comes after, the next one too: two ticks, the first the delay after the slice). Each row is its own group (GROUP BY slice_end): rows that reach the windows
-- together (the slices' timer held up on a loaded machine, and then two slices' rows come at once) each get their
-- tick; a window over them together wrote only the earliest one's, and the later transactions waited for the next
-- one (seen in a test run: a burst's last two transactions got no verdict). A row held up on its way reaches
-- later windows, all of which it still qualifies for: its tick comes late, up to {window_seconds} /
-- {interval_seconds} times, never not at all (a tick written again moves nothing). Slice ends and windows are
-- both read on wall clocks; they would have to disagree by a whole slice to lose a row. (MAX(slice_end) is the
-- group's one slice_end: a condition on the group key alone is pushed into the aggregation, which then stops being
-- a window aggregation and emits updates the Kafka sink cannot take.)
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
SELECT MAX(event_ms) AS newest_ms, window_end AS slice_end, window_time AS read_at
FROM TABLE(TUMBLE(TABLE {parsed}, DESCRIPTOR(proc), INTERVAL '{interval_seconds}' SECOND))
WHERE invalid_reason IS NULL AND on_time
GROUP BY window_start, window_end, window_time;
INSERT INTO time_ticks
SELECT k.tick_key, t.tick_ms
FROM (
    SELECT MAX(newest_ms) + 1 + {tolerance_ms} AS tick_ms, ARRAY[{key_array}] AS tick_keys
    FROM TABLE(HOP(TABLE tick_slices, DESCRIPTOR(read_at), INTERVAL '{interval_seconds}' SECOND,
                   INTERVAL '{window_seconds}' SECOND))
    GROUP BY window_start, window_end, slice_end
    HAVING MAX(slice_end) <= window_start + INTERVAL '{interval_seconds}' SECOND
) AS t
CROSS JOIN UNNEST(t.tick_keys) AS k(tick_key);

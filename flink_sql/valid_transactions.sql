-- The transactions every reader accepts: one rule, fraudstream/contract.py's, rendered into {valid_transaction}
-- by main.py (the handlers and the scenario reader apply the same patterns and ranges). The source reads
-- the three fields as text, because Flink's JSON format would read "12.5" and 12.5 alike as a number and
-- truncate a card number of 4111.5; here both are held to the contract's syntax, then typed.
-- {view} over {source}: the aggregation reads valid_transactions over transactions, the archive its own pair.
CREATE TEMPORARY VIEW {view} AS
SELECT
    TRY_CAST(cc_num AS BIGINT) AS cc_num,
    TRY_CAST(amount AS DECIMAL(12, 2)) AS amount,
    TRY_CAST(trans_ts AS DOUBLE) AS trans_ts,
    tid,
    kafka_topic,
    kafka_partition,
    kafka_offset,
    row_time
FROM {source}
WHERE {valid_transaction};

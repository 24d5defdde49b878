-- Event time: windows follow the transactions' own timestamps. Deterministic, replayable and
-- equal to the batch features; a row is emitted once the watermark passes it.
row_time AS TO_TIMESTAMP_LTZ(CAST(COALESCE(TRY_CAST(trans_ts AS DOUBLE), 0) * 1000 AS BIGINT), 3),
WATERMARK FOR row_time AS row_time - {max_out_of_orderness}

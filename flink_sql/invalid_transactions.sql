-- The records refused, with their place and reason: values that are not JSON objects (from the unparsed
-- source), then JSON objects that fail the contract's rule (from the parsed view).
SELECT
    kafka_topic AS topic,
    kafka_partition AS `partition`,
    kafka_offset AS `offset`,
    CASE WHEN `value` IS NULL THEN 'record has no value' ELSE 'value is not a JSON object' END AS reason
FROM transactions_unparsed
WHERE `value` IS NULL OR NOT (`value` IS JSON OBJECT)
UNION ALL
SELECT kafka_topic, kafka_partition, kafka_offset, invalid_reason
FROM {parsed}
WHERE invalid_reason IS NOT NULL

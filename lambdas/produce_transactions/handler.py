"""Invoked by `fraudstream simulate --stack` with a scenario's lines -> each sent to the transactions topic from
inside the VPC, and an answer for every line (delivered with its place, failed, or refused with its reason)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from fraudstream.online import produce, settings
from fraudstream.online.kafka_clients import security_config
from fraudstream.online.sending import producer_config
from fraudstream.online.telemetry import logger, skip_unlogged_lookups

skip_unlogged_lookups()  # a handler's process logs only through Powertools' Logger

SETTINGS = settings.producer_settings()  # a missing or invalid variable fails the cold start
TIMEOUT_S = 30.0  # to connect, to fetch the topic's metadata, and to deliver each message
_producer = None


def producer():
    """One producer per instance, made on the first invocation (kafka-python is imported then)."""
    global _producer
    if _producer is None:
        from kafka import KafkaProducer

        _producer = KafkaProducer(**producer_config(SETTINGS.brokers.split(","), TIMEOUT_S, "fraudstream-producer",
                                                    security_config(SETTINGS.security, SETTINGS.region)))
    return _producer


@logger.inject_lambda_context(log_event=False)  # never log an event: it holds card numbers
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    result = produce.handle_produce_event(event, producer(), SETTINGS.topic, timeout_s=TIMEOUT_S)
    logger.info("scenario sent", extra={key: len(value) if isinstance(value, list) else value
                                        for key, value in result.items()})
    return result

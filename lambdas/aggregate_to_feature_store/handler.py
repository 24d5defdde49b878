"""MSK trigger on Flink's transaction features -> each card's newest 10-minute record into cc-agg-fg."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from fraudstream.online import aggregate, backends, settings
from fraudstream.online.telemetry import logger, metrics, skip_unlogged_lookups

skip_unlogged_lookups()  # a handler's process logs only through Powertools' Logger

SETTINGS = settings.aggregate_settings()  # a missing or invalid variable fails the cold start
STORE = backends.build_store(SETTINGS.store)


@logger.inject_lambda_context(log_event=False)  # never log an event: it holds card numbers
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    summary = aggregate.handle_aggregate_event(event, STORE, SETTINGS)
    logger.info("aggregates processed", extra=summary)
    return summary

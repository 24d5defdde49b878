"""MSK triggers on Flink's transaction features -> one FRAUD / NOT FRAUD verdict per transaction, written once
to the verdicts topic and logged, and on its invalid-transactions topic -> one logged error per refused record."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from fraudstream.online import backends, predict, settings
from fraudstream.online.telemetry import logger, metrics, skip_unlogged_lookups

skip_unlogged_lookups()  # a handler's process logs only through Powertools' Logger

SETTINGS = settings.predict_settings()  # a missing or invalid variable fails the cold start
STORE = backends.build_store(SETTINGS.store)
SCORER = backends.build_scorer(SETTINGS)  # refuses a model trained on another feature set
WRITER = backends.build_verdict_writer(SETTINGS)  # the verdicts topic; connects on its first write


@logger.inject_lambda_context(log_event=False)  # never log an event: it holds card numbers
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    summary = predict.handle_predict_event(event, STORE, SCORER, SETTINGS, writer=WRITER)
    logger.info("transactions processed", extra=summary)
    return summary

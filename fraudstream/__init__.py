"""fraudstream: streaming fraud detection with aggregated features.

One room per concern, dependencies one way (docs/development.md: "Layout"; tests/unit/test_layout.py keeps them):

- root modules (`contract`, `stack_outputs`, `paths`, `checks`, `files`): names and rules that cross a
  boundary; they import no room.
- `offline`: synthetic data, batch SQL, training, evaluation, the model artifact, SageMaker job requests.
- `online`: everything a Lambda asset contains: messages, the online feature definition, handler logic,
  stores, scorers, settings, backends, telemetry.
- `packaging`: builders of deployable artifacts (Lambda assets, the Flink application zip, job code).
- `local`: the online path on one machine (topics, trigger, Flink, pipeline, scenarios, replay).
- `operate`: commands against a deployed stack.
- `cli`: the `fraudstream` command; nothing imports it.
"""

"""The online path on one machine: topics, the MSK trigger and Lambda runtime emulated, the Flink job,
the pipeline, scenarios and replay. May use offline, online and packaging."""

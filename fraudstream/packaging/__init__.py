"""Builders of deployable artifacts: the Lambda assets, the Flink application zip, the job code zip.
Imports only the root modules."""

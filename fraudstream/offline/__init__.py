"""The batch side: synthetic data, batch SQL (DuckDB, Spark), training, evaluation, the model artifact,
and the SageMaker job requests. Imports only the root modules (docs/development.md: "Layout")."""

"""Everything a Lambda asset contains: MSK messages, the online feature definition, handler logic,
stores, scorers, settings, the wiring of backends, boto3 clients, telemetry. Imports only the root modules."""

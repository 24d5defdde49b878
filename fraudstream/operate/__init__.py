"""Commands against a deployed stack: find it, simulate traffic, read verdicts, load the 1-week group,
run the SageMaker batch jobs. May use offline, online and local."""

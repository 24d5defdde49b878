"""The CDK app's constructs, one per concern, composed in pipeline_stack.FraudPipelineStack."""

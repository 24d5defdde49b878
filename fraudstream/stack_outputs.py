"""The deployed stack's name and CloudFormation output keys.

The CDK app writes them (app.py, stacks/pipeline_stack.py) and the operating commands read them, so a
renamed output breaks a test instead of a user's `fraudstream logs`.
"""

DEFAULT_STACK_NAME = "FraudStream"  # app.py's stack name unless -c stackName=... says otherwise
ENV_STACK = "FRAUDSTREAM_STACK"  # the operating commands' default --stack

BOOTSTRAP_BROKERS = "BootstrapBrokersSaslIam"
CLUSTER_ARN = "KafkaClusterArn"
TRANSACTIONS_TOPIC = "TransactionsTopic"
FEATURES_TOPIC = "FeaturesTopic"
INVALID_TOPIC = "InvalidTopic"
VERDICTS_TOPIC = "VerdictsTopic"
FLINK_APPLICATION = "FlinkApplicationName"
FLINK_LOG_GROUP = "FlinkLogGroupName"
STREAMING_FEATURE_GROUP = "StreamingFeatureGroupName"
BATCH_FEATURE_GROUP = "BatchFeatureGroupName"
ENDPOINT_NAME = "EndpointName"
AGGREGATE_FUNCTION = "AggregateFunctionName"
AGGREGATE_LOG_GROUP = "AggregateLogGroupName"
PREDICT_FUNCTION = "PredictFunctionName"
PREDICT_LOG_GROUP = "PredictLogGroupName"
PRODUCER_FUNCTION = "ProducerFunctionName"
FAILED_RECORDS_BUCKET = "FailedRecordsBucketName"
ALARM_TOPIC = "AlarmTopicArn"
DASHBOARD = "DashboardName"
REGION = "Region"
DATA_BUCKET = "DataBucketName"
DATA_KEY_ARN = "DataKeyArn"
JOB_ROLE_ARN = "SageMakerJobRoleArn"
JOB_ENTRY_URI = "BatchJobEntryUri"
JOB_DEPS_URI = "BatchJobDepsUri"
NIGHTLY_SCHEDULE = "NightlyRefreshSchedule"
CLIENT_SECURITY_GROUP = "KafkaClientSecurityGroupId"

ALL = (
    BOOTSTRAP_BROKERS, CLUSTER_ARN, TRANSACTIONS_TOPIC, FEATURES_TOPIC, INVALID_TOPIC, VERDICTS_TOPIC, FLINK_APPLICATION,
    FLINK_LOG_GROUP,
    STREAMING_FEATURE_GROUP, BATCH_FEATURE_GROUP, ENDPOINT_NAME, AGGREGATE_FUNCTION, AGGREGATE_LOG_GROUP,
    PREDICT_FUNCTION, PREDICT_LOG_GROUP, PRODUCER_FUNCTION, FAILED_RECORDS_BUCKET, ALARM_TOPIC, DASHBOARD, REGION,
    DATA_BUCKET, DATA_KEY_ARN, JOB_ROLE_ARN, JOB_ENTRY_URI, JOB_DEPS_URI, NIGHTLY_SCHEDULE,
    CLIENT_SECURITY_GROUP,
)

"""One dashboard and the alarms an operator acts on, all publishing to one encrypted SNS topic.

The handlers' own metrics (transactions, fraud verdicts, invalid records) are the Powertools EMF
metrics named in fraudstream.online.telemetry; the rest are the services' metrics.
"""

from __future__ import annotations

import jsii
from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from fraudstream.online import telemetry
from stacks.config import PipelineConfig
from stacks.model_endpoint import VARIANT

MINUTE = Duration.minutes(1)


def handler_metric(name: str, statistic: str = "Sum") -> cw.Metric:
    return cw.Metric(namespace=telemetry.NAMESPACE, metric_name=name, dimensions_map={"service": telemetry.SERVICE},
                     statistic=statistic, period=MINUTE)


def offset_lag(function: lambda_.IFunction) -> cw.Metric:
    """Records the function's consumer group is behind on its topic (Lambda's MSK trigger metric)."""
    return cw.Metric(namespace="AWS/Lambda", metric_name="OffsetLag",
                     dimensions_map={"FunctionName": function.function_name}, statistic="Maximum", period=MINUTE)


def flink_metric(application: str, name: str, statistic: str = "Average") -> cw.Metric:
    return cw.Metric(namespace="AWS/KinesisAnalytics", metric_name=name, dimensions_map={"Application": application},
                     statistic=statistic, period=MINUTE)


def endpoint_metric(endpoint: str, name: str, statistic: str) -> cw.Metric:
    return cw.Metric(namespace="AWS/SageMaker", metric_name=name,
                     dimensions_map={"EndpointName": endpoint, "VariantName": VARIANT}, statistic=statistic,
                     period=MINUTE)


@jsii.implements(events.IRuleTarget)
class TopicTarget:
    """An SNS topic as a rule's target, without CDK's SnsTopic grants (an unconditioned topic statement and a
    second key statement): the topic's policy gets one statement limited to the rule (Observability)."""

    def __init__(self, topic: sns.ITopic) -> None:
        self.topic = topic

    def bind(self, rule: events.IRule, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self.topic.topic_arn)


class Observability(Construct):
    def __init__(self, scope: Construct, id: str, *, config: PipelineConfig, key: kms.IKey,
                 aggregate: lambda_.IFunction, predict: lambda_.IFunction, flink_application: str,
                 endpoint_name: str, nightly_job_prefix: str) -> None:
        super().__init__(scope, id)
        self.alarm_topic = self._build_alarm_topic(config, key)
        self.alarms = self._build_alarms(config, aggregate, predict, flink_application, endpoint_name)
        self.nightly_failures = self._build_nightly_failure_rule(nightly_job_prefix)
        self.dashboard = self._build_dashboard(aggregate, predict, flink_application, endpoint_name)

    def _build_alarm_topic(self, config: PipelineConfig, key: kms.IKey) -> sns.Topic:
        """One encrypted, TLS-only topic every alarm and the failed-job rule publish to."""
        topic = sns.Topic(self, "Alarms", master_key=key, enforce_ssl=True, display_name="fraudstream alarms")
        # The topic's own policy (it enforces TLS) replaces SNS's default one, so CloudWatch alarms
        # of this account need an explicit grant to publish.
        topic.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")], actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}}))
        if config.alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        return topic

    def _build_alarms(self, config: PipelineConfig, aggregate: lambda_.IFunction, predict: lambda_.IFunction,
                      flink_application: str, endpoint_name: str) -> dict[str, cw.Alarm]:
        """The alarms an operator acts on: failing or lagging handlers, Flink down, nightly refresh, endpoint."""
        action = cw_actions.SnsAction(self.alarm_topic)
        alarms: dict[str, cw.Alarm] = {}

        def alarm(name: str, metric: cw.IMetric, threshold: float, description: str, periods: int = 1,
                  missing: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING) -> None:
            created = cw.Alarm(self, name, metric=metric, threshold=threshold, evaluation_periods=periods,
                               comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                               treat_missing_data=missing, alarm_description=description)
            created.add_alarm_action(action)
            alarms[name] = created

        for label, function in (("Aggregate", aggregate), ("Predict", predict)):
            alarm(f"{label}Errors", function.metric_errors(period=Duration.minutes(5), statistic="Sum"), 1,
                  f"The {label.lower()} function failed a batch: its trigger retries, then writes it to S3")
            alarm(f"{label}OffsetLag", offset_lag(function), config.offset_lag_alarm_threshold,
                  f"The {label.lower()} function is falling behind its topic", periods=5)
        alarm("FlinkDowntime", flink_metric(flink_application, "downtime", "Maximum"), 1,
              "The Flink aggregation is not running (or sends no metrics): the 10-minute features go stale",
              periods=5, missing=cw.TreatMissingData.BREACHING)
        # A nightly refresh Scheduler could not start (rejected request, missing permission) never becomes a
        # job, so the failed-job rule (_build_nightly_failure_rule) cannot see it: alarm on the dropped
        # invocation instead.
        alarm("NightlyRefreshNotStarted",
              cw.Metric(namespace="AWS/Scheduler", metric_name="InvocationDroppedCount",
                        dimensions_map={"ScheduleGroup": "default"}, statistic="Sum", period=Duration.hours(1)), 1,
              "The nightly refresh schedule gave up starting its processing job")
        alarm("EndToEndLag", handler_metric(telemetry.END_TO_END_LAG, "p99"), config.freshness_alarm_seconds,
              f"p99 of transaction-to-verdict lag above {config.freshness_alarm_seconds} s for 5 minutes: verdicts "
              "come late (consumer lag, slow store or endpoint)", periods=5)
        alarm("Endpoint5xx", endpoint_metric(endpoint_name, "Invocation5XXErrors", "Sum"), 1,
              "The model endpoint returned server errors", periods=5)
        return alarms

    def _build_nightly_failure_rule(self, nightly_job_prefix: str) -> events.Rule:
        """A nightly refresh that fails leaves the 1-week group a day older: tell the alarm topic."""
        rule = events.Rule(
            self, "NightlyRefreshFailed",
            description="The nightly refresh job of the 1-week feature group failed or was stopped",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"], detail_type=["SageMaker Processing Job State Change"],
                detail={"ProcessingJobStatus": ["Failed", "Stopped"],
                        "ProcessingJobName": [{"prefix": f"{nightly_job_prefix}-"}]}),
            targets=[TopicTarget(self.alarm_topic)],
        )
        # EventBridge may publish for this rule only (the confused-deputy guard SNS documents).
        self.alarm_topic.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal("events.amazonaws.com")], actions=["sns:Publish"],
            resources=[self.alarm_topic.topic_arn], conditions={"ArnEquals": {"aws:SourceArn": rule.rule_arn}}))
        return rule

    def _build_dashboard(self, aggregate: lambda_.IFunction, predict: lambda_.IFunction, flink_application: str,
                         endpoint_name: str) -> cw.Dashboard:
        """One page with the pipeline's flow, the handlers' health, the alarms, Flink and the endpoint."""
        dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"{Stack.of(self).stack_name}-fraudstream")
        duration = lambda f: f.metric_duration(statistic="p99", period=MINUTE)  # noqa: E731
        dashboard.add_widgets(
            cw.GraphWidget(title="Transactions and fraud verdicts per minute",
                           left=[handler_metric(telemetry.TRANSACTIONS), handler_metric(telemetry.FRAUD_VERDICTS)]),
            cw.GraphWidget(title="Invalid records per minute", left=[handler_metric(telemetry.INVALID_RECORDS)]),
            cw.GraphWidget(title="Consumer offset lag", left=[offset_lag(aggregate), offset_lag(predict)]),
        )
        dashboard.add_widgets(
            cw.GraphWidget(title="Lambda errors", left=[aggregate.metric_errors(period=MINUTE),
                                                        predict.metric_errors(period=MINUTE)]),
            cw.GraphWidget(title="Lambda duration p99 (ms)", left=[duration(aggregate), duration(predict)]),
            cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values())),
        )
        dashboard.add_widgets(
            cw.GraphWidget(title="Freshness p50 / p99 (s): transaction to verdict, and to the stored aggregate",
                           left=[handler_metric(name, statistic) for name in (telemetry.END_TO_END_LAG,
                                                                               telemetry.AGGREGATE_LAG)
                                 for statistic in ("p50", "p99")]),
            cw.GraphWidget(title="Late transactions (behind Flink's watermark) and refused records",
                           left=[handler_metric(telemetry.LATE_TRANSACTIONS, "Sum"),
                                 handler_metric(telemetry.INVALID_RECORDS, "Sum")]),
        )
        dashboard.add_widgets(
            cw.GraphWidget(title="Flink uptime and downtime (ms)",
                           left=[flink_metric(flink_application, "uptime", "Maximum"),
                                 flink_metric(flink_application, "downtime", "Maximum")]),
            cw.GraphWidget(title="Flink records per second",
                           left=[flink_metric(flink_application, "numRecordsInPerSecond"),
                                 flink_metric(flink_application, "numRecordsOutPerSecond")]),
            cw.GraphWidget(title="Endpoint latency (µs) and errors",
                           left=[endpoint_metric(endpoint_name, "ModelLatency", "p99")],
                           right=[endpoint_metric(endpoint_name, "Invocation4XXErrors", "Sum"),
                                  endpoint_metric(endpoint_name, "Invocation5XXErrors", "Sum")]),
        )
        return dashboard

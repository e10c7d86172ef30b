# Batch job-state changes of this pipeline's queues -> EventBridge -> POST
# https://<domain_name>/events/batch with the X-Callback-Key header (MLGW_CALLBACK_SECRET),
# at most callback_rate_per_second, retried for a day, then kept in a dead-letter queue.
# Optionally SNS topics -> POST /events/sns (signature-checked by the gateway).

resource "aws_cloudwatch_event_rule" "batch" {
  name        = "${local.prefix}-batch-job-state"
  description = "Batch job state changes of ${var.name}'s queues, to the gateway"

  event_pattern = jsonencode({
    source      = ["aws.batch"]
    detail-type = ["Batch Job State Change"]
    detail = {
      jobQueue = values(var.job_queue_arns)
    }
  })
}

resource "aws_cloudwatch_event_connection" "gateway" {
  name               = "${local.prefix}-callback"
  description        = "X-Callback-Key of ${local.prefix} (MLGW_CALLBACK_SECRET)"
  authorization_type = "API_KEY"

  auth_parameters {
    api_key {
      key   = "X-Callback-Key"
      value = aws_secretsmanager_secret_version.generated["callback"].secret_string
    }
  }
}

resource "aws_cloudwatch_event_api_destination" "gateway" {
  name                             = "${local.prefix}-events-batch"
  description                      = "POST ${local.url}/events/batch"
  invocation_endpoint              = "${local.url}/events/batch"
  http_method                      = "POST"
  invocation_rate_limit_per_second = var.callback_rate_per_second
  connection_arn                   = aws_cloudwatch_event_connection.gateway.arn
}

resource "aws_sqs_queue" "callback_dlq" {
  name                      = "${local.prefix}-callback-dlq"
  message_retention_seconds = 1209600 # 14 days: time to look, fix and replay
  kms_master_key_id         = aws_kms_key.this.arn
}

data "aws_iam_policy_document" "callback_dlq" {
  statement {
    sid       = "EventBridgeDeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.callback_dlq.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.batch.arn, aws_cloudwatch_event_rule.rotation.arn]
    }
  }

  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.callback_dlq.arn]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "callback_dlq" {
  queue_url = aws_sqs_queue.callback_dlq.id
  policy    = data.aws_iam_policy_document.callback_dlq.json
}

data "aws_iam_policy_document" "events_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "events" {
  name               = "${local.prefix}-events"
  assume_role_policy = data.aws_iam_policy_document.events_assume.json
}

data "aws_iam_policy_document" "events" {
  statement {
    sid       = "InvokeTheGateway"
    actions   = ["events:InvokeApiDestination"]
    resources = [aws_cloudwatch_event_api_destination.gateway.arn]
  }
}

resource "aws_iam_role_policy" "events" {
  name   = "invoke-api-destination"
  role   = aws_iam_role.events.id
  policy = data.aws_iam_policy_document.events.json
}

resource "aws_cloudwatch_event_target" "gateway" {
  rule      = aws_cloudwatch_event_rule.batch.name
  target_id = "gateway"
  arn       = aws_cloudwatch_event_api_destination.gateway.arn
  role_arn  = aws_iam_role.events.arn

  retry_policy {
    maximum_event_age_in_seconds = 86400 # a day: the reconciler (MLGW_RECONCILE_AFTER) covers what is lost
    maximum_retry_attempts       = 185   # EventBridge's most
  }

  dead_letter_config {
    arn = aws_sqs_queue.callback_dlq.arn
  }
}

# ---- the SNS path (optional) --------------------------------------------------------------

resource "aws_sns_topic_subscription" "gateway" {
  for_each = toset(var.sns_event_topic_arns)

  topic_arn              = each.value
  protocol               = "https"
  endpoint               = "${local.url}/events/sns"
  endpoint_auto_confirms = true # the gateway confirms the subscription itself (/events/sns)
  raw_message_delivery   = false

  # The first deliveries must find the service answering.
  depends_on = [aws_ecs_service.this]
}

# The trigger dispatcher (subscribed to the trigger topic, failures to its dead-letter
# queue) and, with enable_monitor, the job monitor (Batch job state changes to the
# notifications topic, failures to its own dead-letter queue). Both run the Python in
# functions/, packaged here.

data "aws_region" "current" {}
data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  region     = data.aws_region.current.region
  account    = data.aws_caller_identity.current.account_id
  prefix     = "${var.name}-ml"
  dispatcher = "${local.prefix}-trigger-dispatcher"
  monitor    = "${local.prefix}-job-monitor"
  monitors   = var.enable_monitor ? toset(["monitor"]) : toset([])
}

data "archive_file" "functions" {
  type        = "zip"
  source_dir  = "${path.module}/functions"
  output_path = "${path.root}/.terraform/build/${local.prefix}-functions.zip"
  excludes    = ["**/__pycache__/**", "**/*.pyc"]
}

# ---- dead-letter queues -------------------------------------------------------------------

resource "aws_sqs_queue" "dlq" {
  for_each = merge({ trigger = "${local.dispatcher}-dlq" }, { for m in local.monitors : m => "${local.monitor}-dlq" })

  name                      = each.value
  message_retention_seconds = 1209600 # 14 days, SQS's longest: time to look and replay
  sqs_managed_sse_enabled   = true
}

data "aws_iam_policy_document" "dlq" {
  for_each = aws_sqs_queue.dlq

  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value.arn]
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

  dynamic "statement" {
    for_each = each.key == "trigger" ? [1] : []
    content {
      sid       = "SnsDeadLetters"
      actions   = ["sqs:SendMessage"]
      resources = [each.value.arn]
      principals {
        type        = "Service"
        identifiers = ["sns.amazonaws.com"]
      }
      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = [var.trigger_topic_arn]
      }
    }
  }

  # EventBridge hands the monitor's undeliverable events to the monitor's queue.
  dynamic "statement" {
    for_each = each.key == "monitor" ? [1] : []
    content {
      sid       = "EventBridgeDeadLetters"
      actions   = ["sqs:SendMessage"]
      resources = [each.value.arn]
      principals {
        type        = "Service"
        identifiers = ["events.amazonaws.com"]
      }
      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = [aws_cloudwatch_event_rule.job_state["monitor"].arn]
      }
    }
  }
}

resource "aws_sqs_queue_policy" "dlq" {
  for_each = aws_sqs_queue.dlq

  queue_url = each.value.id
  policy    = data.aws_iam_policy_document.dlq[each.key].json
}

# ---- roles ----------------------------------------------------------------------------------

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "dispatcher" {
  name               = local.dispatcher
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "dispatcher" {
  statement {
    sid     = "SubmitToThisPipeline"
    actions = ["batch:SubmitJob"]
    resources = concat(
      values(var.job_queue_arns),
      flatten([for n in values(var.job_definition_names) : [
        "arn:${data.aws_partition.current.partition}:batch:${local.region}:${local.account}:job-definition/${n}",
        "arn:${data.aws_partition.current.partition}:batch:${local.region}:${local.account}:job-definition/${n}:*",
      ]]),
    )
  }

  # SubmitJob with tags (mlgw:job-id…) also needs TagResource on the new job.
  statement {
    sid       = "TagTheJobs"
    actions   = ["batch:TagResource"]
    resources = ["arn:${data.aws_partition.current.partition}:batch:${local.region}:${local.account}:job/*"]
    condition {
      test     = "StringEquals"
      variable = "batch:CreateAction"
      values   = ["SubmitJob"]
    }
  }

  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq["trigger"].arn]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this["dispatcher"].arn}:*"]
  }

  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # X-Ray has no resource-level permissions
  }
}

resource "aws_iam_role_policy" "dispatcher" {
  name   = "dispatch"
  role   = aws_iam_role.dispatcher.id
  policy = data.aws_iam_policy_document.dispatcher.json
}

resource "aws_iam_role" "monitor" {
  for_each = local.monitors

  name               = local.monitor
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "monitor" {
  for_each = local.monitors

  statement {
    sid       = "Notify"
    actions   = ["sns:Publish"]
    resources = [var.notifications_topic_arn]
  }

  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq["monitor"].arn]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this["monitor"].arn}:*"]
  }

  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # X-Ray has no resource-level permissions
  }
}

resource "aws_iam_role_policy" "monitor" {
  for_each = local.monitors

  name   = "notify"
  role   = aws_iam_role.monitor[each.key].id
  policy = data.aws_iam_policy_document.monitor[each.key].json
}

# ---- functions ------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_158:function logs hold no secrets; the CloudWatch Logs service key encrypts them, a customer key adds cost and a key policy (set log_kms_key_arn to use one)
  #checkov:skip=CKV_AWS_338:retention is the log_retention_days variable
  for_each = merge({ dispatcher = local.dispatcher }, { for m in local.monitors : m => local.monitor })

  name              = "/aws/lambda/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
}

resource "aws_lambda_function" "dispatcher" {
  #checkov:skip=CKV_AWS_115:reserved concurrency is the dispatcher_concurrency variable, unreserved by default: new accounts may have only 10 concurrent executions, all of which must stay unreserved
  #checkov:skip=CKV_AWS_117:the VPC has no NAT gateway by design; outside a VPC the function reaches the Batch API directly and needs no network of its own
  #checkov:skip=CKV_AWS_272:the code is built from this repository by Terraform itself; code signing would need a signing profile and a separate build step
  #checkov:skip=CKV_AWS_173:the environment holds queue and bucket names only, no secrets; Lambda encrypts it at rest with its service key
  function_name                  = local.dispatcher
  description                    = "Routes trigger messages of ${var.name} to the GPU or CPU Batch queue"
  role                           = aws_iam_role.dispatcher.arn
  runtime                        = var.runtime
  handler                        = "dispatcher.handler"
  architectures                  = ["arm64"]
  filename                       = data.archive_file.functions.output_path
  source_code_hash               = data.archive_file.functions.output_base64sha256
  timeout                        = 30
  memory_size                    = 256
  reserved_concurrent_executions = var.dispatcher_concurrency

  environment {
    variables = {
      GPU_JOB_QUEUE      = var.job_queue_arns["gpu"]
      CPU_JOB_QUEUE      = var.job_queue_arns["cpu"]
      GPU_JOB_DEFINITION = var.job_definition_names["gpu"]
      CPU_JOB_DEFINITION = var.job_definition_names["cpu"]
      GPU_JOB_VCPUS      = tostring(var.gpu_job_vcpus)
      GPU_JOB_MEMORY     = tostring(var.gpu_job_memory)
      GPU_JOB_GPUS       = tostring(var.gpu_job_gpus)
      CPU_JOB_VCPUS      = tostring(var.cpu_job_vcpus)
      CPU_JOB_MEMORY     = tostring(var.cpu_job_memory)
      ML_INPUT_BUCKET    = var.input_bucket
      ML_OUTPUT_BUCKET   = var.output_bucket
    }
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dlq["trigger"].arn
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.this["dispatcher"].name
  }

  depends_on = [aws_iam_role_policy.dispatcher]
}

# SNS invokes asynchronously: two retries, then the message goes to the dead-letter queue.
resource "aws_lambda_function_event_invoke_config" "dispatcher" {
  function_name                = aws_lambda_function.dispatcher.function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 3600
}

resource "aws_lambda_permission" "sns" {
  statement_id  = "AllowTriggerTopic"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.dispatcher.function_name
  principal     = "sns.amazonaws.com"
  source_arn    = var.trigger_topic_arn
}

# Messages SNS itself cannot deliver (the function throttled past SNS's retries) go to the
# same dead-letter queue as those the function refused.
resource "aws_sns_topic_subscription" "dispatcher" {
  topic_arn      = var.trigger_topic_arn
  protocol       = "lambda"
  endpoint       = aws_lambda_function.dispatcher.arn
  redrive_policy = jsonencode({ deadLetterTargetArn = aws_sqs_queue.dlq["trigger"].arn })

  depends_on = [aws_lambda_permission.sns]
}

resource "aws_lambda_function" "monitor" {
  #checkov:skip=CKV_AWS_115:reserved concurrency is the monitor_concurrency variable, unreserved by default: new accounts may have only 10 concurrent executions, all of which must stay unreserved
  #checkov:skip=CKV_AWS_117:the VPC has no NAT gateway by design; outside a VPC the function reaches SNS directly
  #checkov:skip=CKV_AWS_272:the code is built from this repository by Terraform itself; code signing would need a signing profile and a separate build step
  #checkov:skip=CKV_AWS_173:the environment holds a topic ARN only, no secrets
  for_each = local.monitors

  function_name                  = local.monitor
  description                    = "Sends a summary of each finished Batch job of ${var.name} to the notifications topic"
  role                           = aws_iam_role.monitor[each.key].arn
  runtime                        = var.runtime
  handler                        = "monitor.handler"
  architectures                  = ["arm64"]
  filename                       = data.archive_file.functions.output_path
  source_code_hash               = data.archive_file.functions.output_base64sha256
  timeout                        = 30
  memory_size                    = 128
  reserved_concurrent_executions = var.monitor_concurrency

  environment {
    variables = {
      NOTIFY_TOPIC_ARN = var.notifications_topic_arn
      NOTIFY_STATUSES  = join(",", var.monitor_statuses)
    }
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dlq["monitor"].arn
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.this["monitor"].name
  }

  depends_on = [aws_iam_role_policy.monitor]
}

resource "aws_lambda_function_event_invoke_config" "monitor" {
  for_each = local.monitors

  function_name                = aws_lambda_function.monitor[each.key].function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 3600
}

resource "aws_cloudwatch_event_rule" "job_state" {
  for_each = local.monitors

  name        = "${local.monitor}-job-state"
  description = "Finished jobs of the ${var.name} job queues"
  event_pattern = jsonencode({
    source        = ["aws.batch"]
    "detail-type" = ["Batch Job State Change"]
    detail = {
      jobQueue = values(var.job_queue_arns)
      status   = var.monitor_statuses
    }
  })
}

resource "aws_cloudwatch_event_target" "monitor" {
  for_each = local.monitors

  rule = aws_cloudwatch_event_rule.job_state[each.key].name
  arn  = aws_lambda_function.monitor[each.key].arn

  retry_policy {
    maximum_retry_attempts       = 10
    maximum_event_age_in_seconds = 3600
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq["monitor"].arn
  }
}

resource "aws_lambda_permission" "events" {
  for_each = local.monitors

  statement_id  = "AllowJobStateRule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.monitor[each.key].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.job_state[each.key].arn
}

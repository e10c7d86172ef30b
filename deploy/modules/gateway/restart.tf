# RDS rotates the master password itself (every 7 days by default). A task reads it at start,
# so a rotation is followed by a rolling restart of the service: Secrets Manager's
# RotationSucceeded event for the master secret -> this function -> ecs:UpdateService with
# forceNewDeployment. Without it a task could not open new database connections after a
# rotation (deploy/README.md, "Rotating the secrets").

data "archive_file" "restart" {
  type        = "zip"
  source_file = "${path.module}/functions/restart.py"
  output_path = "${path.root}/.terraform/build/${local.prefix}-restart.zip"
}

resource "aws_cloudwatch_log_group" "restart" {
  #checkov:skip=CKV_AWS_338:retention is the log_retention_days variable, as for the gateway's own logs
  name              = "/aws/lambda/${local.prefix}-restart-on-rotation"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

data "aws_iam_policy_document" "lambda_assume" {
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

resource "aws_iam_role" "restart" {
  name               = "${local.prefix}-restart-on-rotation"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "restart" {
  statement {
    sid       = "RestartTheGatewayService"
    actions   = ["ecs:UpdateService"]
    resources = [aws_ecs_service.this.id]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.restart.arn}:*"]
  }

  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.callback_dlq.arn]
  }

  statement {
    sid       = "DeadLettersEncryption"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
  }

  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # X-Ray has no resource-level permissions
  }
}

resource "aws_iam_role_policy" "restart" {
  name   = "restart-service"
  role   = aws_iam_role.restart.id
  policy = data.aws_iam_policy_document.restart.json
}

resource "aws_lambda_function" "restart" {
  #checkov:skip=CKV_AWS_117:the VPC has no NAT gateway by design; outside a VPC the function reaches the ECS API directly
  #checkov:skip=CKV_AWS_272:the code is built from this repository by Terraform itself; code signing would need a signing profile and a separate build step
  #checkov:skip=CKV_AWS_173:the environment holds a cluster, a service and a secret's ARN, no secret values
  function_name                  = "${local.prefix}-restart-on-rotation"
  description                    = "Rolling restart of ${local.prefix} after RDS rotated the database password"
  role                           = aws_iam_role.restart.arn
  runtime                        = "python3.12"
  handler                        = "restart.handler"
  architectures                  = ["arm64"]
  filename                       = data.archive_file.restart.output_path
  source_code_hash               = data.archive_file.restart.output_base64sha256
  timeout                        = 30
  memory_size                    = 128
  reserved_concurrent_executions = 1 # one restart at a time is enough

  environment {
    variables = {
      CLUSTER    = aws_ecs_cluster.this.name
      SERVICE    = aws_ecs_service.this.name
      SECRET_ARN = aws_db_instance.this.master_user_secret[0].secret_arn
    }
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.callback_dlq.arn
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.restart.name
  }

  depends_on = [aws_iam_role_policy.restart]
}

resource "aws_cloudwatch_event_rule" "rotation" {
  name        = "${local.prefix}-db-password-rotated"
  description = "RDS rotated ${local.prefix}'s database password"

  event_pattern = jsonencode({
    source      = ["aws.secretsmanager"]
    detail-type = ["AWS Service Event via CloudTrail"]
    detail = {
      eventName = ["RotationSucceeded"]
    }
  })
}

resource "aws_cloudwatch_event_target" "rotation" {
  rule      = aws_cloudwatch_event_rule.rotation.name
  target_id = "restart"
  arn       = aws_lambda_function.restart.arn

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 10
  }

  dead_letter_config {
    arn = aws_sqs_queue.callback_dlq.arn
  }
}

resource "aws_lambda_permission" "rotation" {
  statement_id  = "AllowRotationEvents"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.restart.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.rotation.arn
}

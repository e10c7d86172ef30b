# The gateway on AWS: ECS Fargate tasks of the ml-gateway image behind an HTTPS Application
# Load Balancer, PostgreSQL on RDS, its secrets in Secrets Manager, the model cache mounted
# read-only, and EventBridge delivering Batch job-state changes to /events/batch.
#
#   main.tf     key, log group, ECS cluster, task definition, service, autoscaling
#   network.tf  security groups, load balancer, listeners, target group, DNS record
#   database.tf RDS PostgreSQL, its parameter group and subnet group
#   secrets.tf  DATABASE_URL, callback and webhook secrets, SMTP password
#   iam.tf      execution role and the (least-privilege) task role
#   events.tf   EventBridge rule, connection, API destination, target, DLQ; SNS path
#   restart.tf  a rolling restart after RDS rotated the database password

data "aws_region" "current" {}
data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  prefix    = "${var.name}-gateway"
  region    = data.aws_region.current.region
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  port      = 8080
  url       = "https://${var.domain_name}"

  # The container's plain environment: the pipeline's settings, then what hosting decides.
  # Secrets are never here (local.secrets; tests/deploy/test_gateway_task.py checks it).
  environment = merge(var.gateway_env, var.extra_environment, {
    MLGW_LISTEN           = "0.0.0.0:${local.port}"
    MLGW_MIGRATIONS_DIR   = "/opt/ml-gateway/migrations"
    MLGW_SHUTDOWN_TIMEOUT = tostring(var.shutdown_timeout_seconds)
    MLGW_CALLBACK_HEADER  = "X-Callback-Key"
    MLGW_CACHE_DIR        = "/opt/models"
    MLGW_CACHE_DISPATCH   = "batch"
    }, var.smtp_url == null ? {} : { MLGW_SMTP_URL = var.smtp_url },
    var.smtp_from == null ? {} : { MLGW_SMTP_FROM = var.smtp_from },
    var.smtp_user == null ? {} : { MLGW_SMTP_USER = var.smtp_user },
    length(var.notify_emails) == 0 ? {} : { MLGW_NOTIFY_EMAILS = join(",", var.notify_emails) },
    length(var.sns_event_topic_arns) == 0 ? {} : { MLGW_SNS_TOPIC_ARNS = join(",", var.sns_event_topic_arns) },
  )

  # name => Secrets Manager reference (a secret's ARN, or ARN:json-key:: for one key of it).
  secrets = merge({
    DATABASE_URL           = aws_secretsmanager_secret.database_url.arn
    MLGW_DATABASE_PASSWORD = "${aws_db_instance.this.master_user_secret[0].secret_arn}:password::"
    MLGW_CALLBACK_SECRET   = aws_secretsmanager_secret.generated["callback"].arn
    MLGW_WEBHOOK_SECRET    = aws_secretsmanager_secret.generated["webhook"].arn
  }, local.smtp_secret ? { MLGW_SMTP_PASSWORD = aws_secretsmanager_secret.smtp[0].arn } : {})

  smtp_secret = nonsensitive(var.smtp_password != null) # whether, not what
}

# ---- the module's key: secrets, the gateway's logs, the database, the DLQ -----------------

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_111:a key policy: "*" as resource is this key itself; writes are the account's administrators' (IAM still decides) and two services' encryption, each under a condition
  #checkov:skip=CKV_AWS_356:a key policy: "*" as resource is this key itself, the only resource a key policy can name
  #checkov:skip=CKV_AWS_109:a key policy: the account root statement lets IAM policies decide who administers the key, as AWS's default key policy does
  statement {
    # The account's principals, as IAM policies allow them (a key policy's root statement,
    # its actions named).
    sid = "AccountUsesAndAdministers"
    actions = [
      "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
      "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
      "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
      "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
    ]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncrypts"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values = [
        "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:/ecs/${local.prefix}",
        "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:/aws/rds/instance/${local.prefix}-db/*",
        "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:/aws/lambda/${local.prefix}-restart-on-rotation",
      ]
    }
  }

  statement {
    sid       = "EventBridgeSendsToTheDlq"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]
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

resource "aws_kms_key" "this" {
  description         = "${local.prefix}: secrets, logs, database and callback DLQ"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.prefix}"
  target_key_id = aws_kms_key.this.key_id
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:retention is the log_retention_days variable (30 by default); request logs older than that are rarely worth a year of storage
  name              = "/ecs/${local.prefix}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

# ---- ECS ----------------------------------------------------------------------------------

resource "aws_ecs_cluster" "this" {
  #checkov:skip=CKV_AWS_223:ECS Exec sessions are not logged on purpose: the one that creates the first admin key prints the key, which must not land in a log; sessions are encrypted with the module's key and CloudTrail records who started them
  name = local.prefix

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  configuration {
    execute_command_configuration {
      kms_key_id = aws_kms_key.this.arn
      logging    = "NONE" # a session's output can hold a key just created (README)
    }
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

resource "aws_ecs_task_definition" "this" {
  family                   = local.prefix
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "models"
    efs_volume_configuration {
      file_system_id     = var.efs_file_system_id
      transit_encryption = "ENABLED"
      authorization_config {
        access_point_id = var.efs_access_point_id
        iam             = "ENABLED"
      }
    }
  }

  container_definitions = jsonencode([{
    name      = "gateway"
    image     = var.image
    essential = true
    user      = "10001:10001"
    portMappings = [{
      containerPort = local.port
      protocol      = "tcp"
    }]
    environment = [for k in sort(keys(local.environment)) : { name = k, value = local.environment[k] }]
    secrets     = [for k in sort(keys(local.secrets)) : { name = k, valueFrom = local.secrets[k] }]
    mountPoints = [{
      sourceVolume  = "models"
      containerPath = "/opt/models"
      readOnly      = true
    }]
    # ECS ignores the image's HEALTHCHECK: the same probe, for ECS to replace a hung task.
    healthCheck = {
      command     = ["CMD-SHELL", "curl -fsS -o /dev/null --max-time 2 http://127.0.0.1:${local.port}/healthz || exit 1"]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 60
    }
    # SIGTERM (the image's STOPSIGNAL), then MLGW_SHUTDOWN_TIMEOUT for in-flight requests,
    # then the gateway's own clean-up, before ECS sends SIGKILL.
    stopTimeout            = var.shutdown_timeout_seconds + 20
    readonlyRootFilesystem = false
    # The image runs tini as PID 1 (no ECS init process). The gateway runs as 10001 and so has
    # no capabilities; the default set stays for ECS Exec's agent, which runs as root.
    linuxParameters = {
      initProcessEnabled = false
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this.name
        awslogs-region        = local.region
        awslogs-stream-prefix = "gateway"
        mode                  = "non-blocking"
        max-buffer-size       = "4m"
      }
    }
  }])
}

resource "aws_ecs_service" "this" {
  #checkov:skip=CKV_AWS_333:the pipeline's subnets are public and have no NAT gateway (modules/vpc); tasks need a public IP to reach ECR, Secrets Manager and AWS APIs, and their security group admits only the load balancer
  name                               = local.prefix
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.this.arn
  desired_count                      = var.desired_count
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  enable_execute_command             = true # the first admin key (README): ecs execute-command
  propagate_tags                     = "SERVICE"
  health_check_grace_period_seconds  = 60
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  wait_for_steady_state              = false

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = true
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.this.arn
    container_name   = "gateway"
    container_port   = local.port
  }

  # Autoscaling owns the count after the first deployment.
  lifecycle {
    ignore_changes = [desired_count]
  }

  depends_on = [aws_lb_listener.https, aws_iam_role_policy.task]
}

resource "aws_appautoscaling_target" "this" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_count
  max_capacity       = var.max_count
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${local.prefix}-cpu"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  resource_id        = aws_appautoscaling_target.this.resource_id
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension
  policy_type        = "TargetTrackingScaling"

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

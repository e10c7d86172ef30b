# Two roles. The execution role is ECS's: pull the image, write the gateway's logs, read the
# task's secrets. The task role is the gateway's own, least privilege: exactly the calls
# README.md lists for dispatching to the pipeline, on this pipeline's resources. Batch jobs
# keep the job role of modules/batch: the gateway never passes its own role to a job (no
# iam:PassRole here).

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${local.region}:${local.account}:*"]
    }
  }
}

# ---- execution role -----------------------------------------------------------------------

resource "aws_iam_role" "execution" {
  name               = "${local.prefix}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "PullAuthorisation"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource
  }

  statement {
    sid       = "PullTheGatewayImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [var.image_repository_arn]
  }

  statement {
    sid       = "WriteTheGatewayLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid       = "ReadTheTaskSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = distinct([for ref in values(local.secrets) : regex("^arn:[^:]+:secretsmanager:[^:]+:[0-9]+:secret:[^:]+", ref)])
  }

  statement {
    sid       = "DecryptTheTaskSecrets"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-log-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# ---- task role ----------------------------------------------------------------------------

resource "aws_iam_role" "task" {
  name               = "${local.prefix}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

locals {
  job_definition_arns = flatten([for n in values(var.job_definition_names) : [
    "arn:${local.partition}:batch:${local.region}:${local.account}:job-definition/${n}",
    "arn:${local.partition}:batch:${local.region}:${local.account}:job-definition/${n}:*",
  ]])
  job_arns = "arn:${local.partition}:batch:${local.region}:${local.account}:job/*"
}

data "aws_iam_policy_document" "task" {
  statement {
    sid       = "SubmitToThePipelinesQueues"
    actions   = ["batch:SubmitJob"]
    resources = concat(values(var.job_queue_arns), local.job_definition_arns)
  }

  # SubmitJob with tags needs TagResource on the job it creates; CancelJob and TerminateJob
  # act on jobs (Batch has no condition naming a job's queue).
  statement {
    sid       = "TagCancelTerminateJobs"
    actions   = ["batch:TagResource", "batch:CancelJob", "batch:TerminateJob"]
    resources = [local.job_arns]
  }

  statement {
    sid       = "DescribeAndListJobs"
    actions   = ["batch:DescribeJobs", "batch:ListJobs"]
    resources = ["*"] # neither call supports resource-level permissions
  }

  statement {
    sid       = "PublishToThePipelinesTopics"
    actions   = ["sns:Publish"]
    resources = values(var.topic_arns)
  }

  statement {
    sid       = "ListThePipelinesBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = values(var.bucket_arns)
  }

  statement {
    sid       = "ReadWriteThePipelinesObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = [for arn in values(var.bucket_arns) : "${arn}/*"]
  }

  statement {
    sid       = "ReadJobLogs"
    actions   = ["logs:GetLogEvents", "logs:FilterLogEvents", "logs:DescribeLogStreams"]
    resources = [var.job_log_group_arn, "${var.job_log_group_arn}:*"]
  }

  # The model cache, read-only: ClientMount through the /models access point, no ClientWrite.
  statement {
    sid       = "MountTheModelCacheReadOnly"
    actions   = ["elasticfilesystem:ClientMount"]
    resources = [var.efs_file_system_arn]
    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [var.efs_access_point_arn]
    }
  }

  # ECS Exec (the first admin key, README): the SSM channel of `aws ecs execute-command`.
  statement {
    sid = "EcsExec"
    actions = [
      "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
    ]
    resources = ["*"] # these calls have no resource
  }

  statement {
    sid       = "EcsExecEncryption"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "gateway"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

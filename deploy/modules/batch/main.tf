# AWS Batch: a GPU and a CPU compute environment (scale to zero), a job queue and a job
# definition for each, and their roles. Everything of the two kinds is one for_each over
# local.kinds.

data "aws_region" "current" {}
data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  region  = data.aws_region.current.region
  account = data.aws_caller_identity.current.account_id
  prefix  = "${var.name}-ml"

  kinds = {
    gpu = {
      instance_types = var.gpu_instance_types
      max_vcpus      = var.gpu_max_vcpus
      spot           = var.gpu_use_spot_instances
      image_type     = var.gpu_ami_image_type
      volume_size    = var.gpu_root_volume_size
      vcpus          = var.gpu_job_vcpus
      memory         = var.gpu_job_memory
      gpus           = var.gpu_job_gpus
    }
    cpu = {
      instance_types = var.cpu_instance_types
      max_vcpus      = var.cpu_max_vcpus
      spot           = var.cpu_use_spot_instances
      image_type     = var.cpu_ami_image_type
      volume_size    = var.cpu_root_volume_size
      vcpus          = var.cpu_job_vcpus
      memory         = var.cpu_job_memory
      gpus           = 0
    }
  }

  log_group_name = "/aws/batch/${local.prefix}-jobs"
}

# ---- roles --------------------------------------------------------------------------------

data "aws_iam_policy_document" "assume" {
  # EC2 sends no aws:SourceAccount when it assumes an instance role; Batch and ECS do.
  for_each = {
    batch = { service = "batch.amazonaws.com", source_account = true }
    ec2   = { service = "ec2.amazonaws.com", source_account = false }
    ecs   = { service = "ecs-tasks.amazonaws.com", source_account = true }
  }

  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = [each.value.service]
    }
    dynamic "condition" {
      for_each = each.value.source_account ? [1] : []
      content {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account]
      }
    }
  }
}

# The role Batch manages the compute environments with (the original pipeline's). With
# use_service_linked_role, Batch's own AWSServiceRoleForBatch is used instead, which AWS
# requires for in-place infrastructure updates of a compute environment (instance types,
# launch template); with this role such a change replaces the environment.
resource "aws_iam_role" "service" {
  name               = "${local.prefix}-batch-service"
  assume_role_policy = data.aws_iam_policy_document.assume["batch"].json
}

resource "aws_iam_role_policy_attachment" "service" {
  role       = aws_iam_role.service.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSBatchServiceRole"
}

# The instances' role: the ECS agent's (register, pull from ECR, write logs).
resource "aws_iam_role" "instance" {
  name               = "${local.prefix}-batch-instance"
  assume_role_policy = data.aws_iam_policy_document.assume["ec2"].json
}

resource "aws_iam_role_policy_attachment" "instance" {
  role       = aws_iam_role.instance.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
}

resource "aws_iam_instance_profile" "instance" {
  name = "${local.prefix}-batch-instance"
  role = aws_iam_role.instance.name
}

# The execution role: pulls the image and sends the container's logs.
resource "aws_iam_role" "execution" {
  name               = "${local.prefix}-job-execution"
  assume_role_policy = data.aws_iam_policy_document.assume["ecs"].json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

# The job role: what a job's own code may do. Read the input and models buckets, read and
# write its outputs (a retried attempt restores its checkpoints from there), use the model
# cache through its access point. Nothing else.
data "aws_iam_policy_document" "job" {
  statement {
    sid       = "ReadInputAndModels"
    actions   = ["s3:GetObject"]
    resources = ["${var.input_bucket_arn}/*", "${var.models_bucket_arn}/*"]
  }

  statement {
    sid       = "ListBuckets"
    actions   = ["s3:ListBucket"]
    resources = [var.input_bucket_arn, var.models_bucket_arn, var.output_bucket_arn]
  }

  statement {
    sid       = "ReadWriteOutputs"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${var.output_bucket_arn}/*"]
  }

  statement {
    sid       = "ModelCache"
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [var.efs_file_system_arn]
    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [var.efs_access_point_arn]
    }
  }

  dynamic "statement" {
    for_each = var.bucket_kms_key_arn == null ? [] : [1]
    content {
      sid       = "BucketKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [var.bucket_kms_key_arn]
    }
  }
}

resource "aws_iam_role" "job" {
  name               = "${local.prefix}-job"
  assume_role_policy = data.aws_iam_policy_document.assume["ecs"].json
}

resource "aws_iam_role_policy" "job" {
  name   = "ml-job-data"
  role   = aws_iam_role.job.id
  policy = data.aws_iam_policy_document.job.json
}

# ---- compute ------------------------------------------------------------------------------

# IMDSv2 only, with a hop limit of 1 so that job containers (bridge networking) cannot
# reach the instance's metadata and the instance role: jobs get their own role's
# credentials from the ECS agent. And an encrypted root volume big enough for the images.
resource "aws_launch_template" "this" {
  for_each = local.kinds

  name_prefix            = "${local.prefix}-${each.key}-"
  update_default_version = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = each.value.volume_size
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = { Name = "${local.prefix}-${each.key}" }
  }
}

resource "aws_batch_compute_environment" "this" {
  for_each = local.kinds

  name         = "${local.prefix}-${each.key}"
  type         = "MANAGED"
  state        = "ENABLED"
  service_role = var.use_service_linked_role ? null : aws_iam_role.service.arn

  compute_resources {
    type                = each.value.spot ? "SPOT" : "EC2"
    allocation_strategy = each.value.spot ? "SPOT_PRICE_CAPACITY_OPTIMIZED" : "BEST_FIT_PROGRESSIVE"
    min_vcpus           = 0 # scale to zero: no instance, no cost, when no job waits
    max_vcpus           = each.value.max_vcpus
    instance_type       = each.value.instance_types
    instance_role       = aws_iam_instance_profile.instance.arn
    subnets             = var.subnet_ids
    security_group_ids  = [var.security_group_id]

    ec2_configuration {
      image_type = each.value.image_type
    }

    launch_template {
      launch_template_id = aws_launch_template.this[each.key].id
      version            = aws_launch_template.this[each.key].latest_version
    }
  }

  update_policy {
    terminate_jobs_on_update      = false
    job_execution_timeout_minutes = 30
  }

  depends_on = [aws_iam_role_policy_attachment.service]

  lifecycle {
    # desired_vcpus is Batch's to change.
    ignore_changes = [compute_resources[0].desired_vcpus]
  }
}

resource "aws_batch_job_queue" "this" {
  for_each = local.kinds

  name     = "${local.prefix}-${each.key}-job-queue"
  state    = "ENABLED"
  priority = 1

  compute_environment_order {
    order               = 1
    compute_environment = aws_batch_compute_environment.this[each.key].arn
  }

  # A job that cannot ever start (its resources exceed the environment's, or the account
  # has no quota for the instances) is cancelled instead of waiting RUNNABLE forever.
  dynamic "job_state_time_limit_action" {
    for_each = {
      "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE" = var.runnable_misconfiguration_timeout_seconds
      "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"         = var.runnable_misconfiguration_timeout_seconds
      "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"           = var.runnable_capacity_timeout_seconds
    }
    content {
      action           = "CANCEL"
      state            = "RUNNABLE"
      reason           = job_state_time_limit_action.key
      max_time_seconds = job_state_time_limit_action.value
    }
  }
}

resource "aws_cloudwatch_log_group" "jobs" {
  #checkov:skip=CKV_AWS_158:job output logs; the CloudWatch Logs service key encrypts them, a customer key adds cost and a key policy (set log_kms_key_arn to use one)
  #checkov:skip=CKV_AWS_338:retention is the log_retention_days variable; results live in S3, logs are for debugging
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
}

resource "aws_batch_job_definition" "this" {
  for_each = local.kinds

  name                       = "${local.prefix}-${each.key}-job"
  type                       = "container"
  platform_capabilities      = ["EC2"]
  propagate_tags             = true
  deregister_on_new_revision = true

  container_properties = jsonencode({
    image            = var.container_image
    jobRoleArn       = aws_iam_role.job.arn
    executionRoleArn = aws_iam_role.execution.arn
    resourceRequirements = concat(
      [
        { type = "VCPU", value = tostring(each.value.vcpus) },
        { type = "MEMORY", value = tostring(each.value.memory) },
      ],
      each.value.gpus > 0 ? [{ type = "GPU", value = tostring(each.value.gpus) }] : [],
    )
    # PyTorch's DataLoader workers pass batches through /dev/shm; Docker's 64 MiB is too little.
    # (No initProcessEnabled: the images run tini as their own PID 1.)
    linuxParameters = {
      sharedMemorySize = var.shared_memory_size
    }
    environment = [
      { name = "HF_HOME", value = "/opt/models/huggingface" },
      { name = "TORCH_HOME", value = "/opt/models/torch" },
      { name = "MODEL_CACHE_DIR", value = "/opt/models" },
      { name = "XDG_CACHE_HOME", value = "/opt/models/cache" },
    ]
    volumes = [{
      name = "models"
      efsVolumeConfiguration = {
        fileSystemId      = var.efs_file_system_id
        transitEncryption = "ENABLED"
        authorizationConfig = {
          accessPointId = var.efs_access_point_id
          iam           = "ENABLED"
        }
      }
    }]
    mountPoints = [{ sourceVolume = "models", containerPath = "/opt/models", readOnly = false }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = aws_cloudwatch_log_group.jobs.name
        "awslogs-region"        = local.region
        "awslogs-stream-prefix" = "${local.prefix}-${each.key}"
      }
    }
    privileged = false
  })

  # Retry what a spot reclaim or a lost host did to a job; a failing script fails once.
  retry_strategy {
    attempts = var.job_attempts
    evaluate_on_exit {
      on_status_reason = "Host EC2*"
      action           = "RETRY"
    }
    evaluate_on_exit {
      on_reason = "*"
      action    = "EXIT"
    }
  }

  timeout {
    attempt_duration_seconds = var.job_timeout_seconds
  }
}

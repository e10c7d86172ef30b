# The model cache: an encrypted EFS file system with elastic throughput (pay per use, no
# provisioned MiB/s), one mount target per public subnet, and an access point for /models
# that Batch jobs mount at /opt/models. The seed's cleanup job (operation cleanup-cache)
# empties /opt/models and leaves the file system, mount targets and access point in place.

resource "aws_efs_file_system" "this" {
  #checkov:skip=CKV2_AWS_18:a cache of downloadable models; backing it up would cost more than downloading again
  creation_token   = "${var.name}-ml-models"
  encrypted        = true
  kms_key_id       = var.kms_key_arn # null: the AWS managed aws/elasticfilesystem key
  performance_mode = "generalPurpose"
  throughput_mode  = "elastic"

  lifecycle_policy {
    transition_to_ia = var.transition_to_ia
  }

  lifecycle_policy {
    transition_to_primary_storage_class = "AFTER_1_ACCESS"
  }

  tags = { Name = "${var.name}-ml-models" }
}

resource "aws_efs_backup_policy" "this" {
  file_system_id = aws_efs_file_system.this.id
  backup_policy {
    status = "DISABLED"
  }
}

resource "aws_efs_mount_target" "this" {
  for_each = var.subnets

  file_system_id  = aws_efs_file_system.this.id
  subnet_id       = each.value
  security_groups = [var.security_group_id]
}

resource "aws_efs_access_point" "models" {
  file_system_id = aws_efs_file_system.this.id

  # Every client writes as this user, whatever user its container runs as.
  posix_user {
    uid = var.posix_uid
    gid = var.posix_gid
  }

  root_directory {
    path = "/models"
    creation_info {
      owner_uid   = var.posix_uid
      owner_gid   = var.posix_gid
      permissions = "0775"
    }
  }

  tags = { Name = "${var.name}-ml-models" }
}

data "aws_iam_policy_document" "file_system" {
  # Only TLS connections, through the access point, by IAM-authorised clients.
  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["*"]
    resources = [aws_efs_file_system.this.arn]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "AccessPointOnly"
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [aws_efs_file_system.this.arn]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [aws_efs_access_point.models.arn]
    }
  }
}

resource "aws_efs_file_system_policy" "this" {
  file_system_id = aws_efs_file_system.this.id
  policy         = data.aws_iam_policy_document.file_system.json
}

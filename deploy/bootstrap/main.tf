# The remote state's own home, made once per account and region before deploy/ is
# initialised: a versioned, encrypted, private S3 bucket for the state and a DynamoDB table
# for the lock. Its own state stays local (terraform.tfstate here): keep it, or import the
# two resources again should it be lost.

terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.25"
    }
  }
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = {
      Project   = var.project_name
      ManagedBy = "terraform"
      Component = "terraform-state"
    }
  }
}

variable "project_name" {
  description = "The project_name of deploy/ (the bucket is <project_name>-terraform-state)."
  type        = string
  default     = "ml-pipeline"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.project_name))
    error_message = "project_name must be 2 to 31 of a-z, 0-9 and -, starting with a letter."
  }
}

variable "aws_region" {
  description = "Region of the state bucket and lock table."
  type        = string
  default     = "us-east-1"
}

variable "state_bucket_name" {
  description = "Name of the state bucket (S3 names are global: override when the default is taken)."
  type        = string
  default     = null
}

locals {
  bucket = coalesce(var.state_bucket_name, "${var.project_name}-terraform-state")
  table  = "${var.project_name}-terraform-lock"
}

resource "aws_s3_bucket" "state" {
  #checkov:skip=CKV_AWS_18:access logging needs a second bucket; CloudTrail records who touched the state
  #checkov:skip=CKV_AWS_144:cross-region replication of a few kilobytes of state is not worth a second region's setup; versioning keeps every revision
  #checkov:skip=CKV2_AWS_62:nothing consumes events of the state bucket
  bucket = local.bucket

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket                  = aws_s3_bucket.state.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    id     = "old-state-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days           = 90
      newer_noncurrent_versions = 20
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.state]
}

data "aws_iam_policy_document" "state" {
  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.state.arn, "${aws_s3_bucket.state.arn}/*"]
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

resource "aws_s3_bucket_policy" "state" {
  bucket = aws_s3_bucket.state.id
  policy = data.aws_iam_policy_document.state.json

  depends_on = [aws_s3_bucket_public_access_block.state]
}

resource "aws_dynamodb_table" "lock" {
  #checkov:skip=CKV_AWS_119:lock entries only (no state); the AWS owned key encrypts them, a customer key adds cost for nothing to protect
  name         = local.table
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "LockID"

  attribute {
    name = "LockID"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  deletion_protection_enabled = true

  lifecycle {
    prevent_destroy = true
  }
}

output "state_bucket" {
  description = "The state bucket (-backend-config=bucket=…)."
  value       = aws_s3_bucket.state.id
}

output "lock_table" {
  description = "The lock table (-backend-config=dynamodb_table=…)."
  value       = aws_dynamodb_table.lock.name
}

output "backend_config" {
  description = "The arguments of `terraform init` in deploy/."
  value = join(" ", [
    "-backend-config=bucket=${aws_s3_bucket.state.id}",
    "-backend-config=dynamodb_table=${aws_dynamodb_table.lock.name}",
    "-backend-config=region=${var.aws_region}",
  ])
}

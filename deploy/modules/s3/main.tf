# The data buckets: input (scripts and data), output (job results), models (weights kept
# across jobs). All private, owner-enforced, KMS-encrypted with S3 bucket keys, TLS-only.

data "aws_caller_identity" "current" {}

locals {
  buckets = {
    input  = { versioned = true }  # scripts: an overwritten script stays recoverable
    output = { versioned = false } # results are rewritten by retries and expire (below)
    models = { versioned = true }  # a replaced model stays recoverable
  }
  bucket_names = {
    for k, _ in local.buckets : k => "${var.name}-ml-${k}-${data.aws_caller_identity.current.account_id}"
  }
}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:access logging needs a separate log bucket and costs per request; CloudTrail data events are the way to audit these buckets when needed
  #checkov:skip=CKV_AWS_144:cross-region replication doubles storage cost; inputs and models can be uploaded again, outputs are reproducible from them
  #checkov:skip=CKV2_AWS_6:every bucket has its public access block (aws_s3_bucket_public_access_block.this, for_each over the same buckets); the check links only one for_each instance
  #checkov:skip=CKV2_AWS_61:every bucket has a lifecycle configuration (aws_s3_bucket_lifecycle_configuration.this, for_each over the same buckets); the check links only one for_each instance
  #checkov:skip=CKV_AWS_145:every bucket is encrypted with aws:kms (aws_s3_bucket_server_side_encryption_configuration.this, for_each); the check links only one for_each instance
  #checkov:skip=CKV_AWS_21:input and models are versioned; output is not on purpose (retried attempts rewrite results, which expire after output_expiration_days)
  #checkov:skip=CKV2_AWS_62:no consumer of S3 event notifications in this pipeline; job state comes from Batch events
  for_each = local.buckets

  bucket        = local.bucket_names[each.key]
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = aws_s3_bucket.this

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn # null: the AWS managed aws/s3 key
    }
    bucket_key_enabled = true # one KMS request per object batch, not per object
  }
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  versioning_configuration {
    status = local.buckets[each.key].versioned ? "Enabled" : "Disabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  dynamic "rule" {
    for_each = local.buckets[each.key].versioned ? [1] : []
    content {
      id     = "expire-old-versions"
      status = "Enabled"
      filter {}
      noncurrent_version_expiration {
        noncurrent_days = var.noncurrent_version_expiration_days
      }
    }
  }

  dynamic "rule" {
    for_each = each.key == "output" && var.output_expiration_days > 0 ? [1] : []
    content {
      id     = "expire-outputs"
      status = "Enabled"
      filter {}
      expiration {
        days = var.output_expiration_days
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

data "aws_iam_policy_document" "bucket" {
  for_each = aws_s3_bucket.this

  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value.arn, "${each.value.arn}/*"]
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

resource "aws_s3_bucket_policy" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  policy = data.aws_iam_policy_document.bucket[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.this]
}

# The trigger topic (messages for the dispatcher, the seed's entry point; the gateway's
# `dispatch: sns`) and the notifications topic (job summaries, emailed to
# notification_emails). Both are encrypted with a KMS key and accept connections over TLS only.

data "aws_caller_identity" "current" {}

locals {
  topics = {
    trigger       = "${var.name}-ml-trigger-events"
    notifications = "${var.name}-ml-job-notifications"
  }
}

resource "aws_sns_topic" "this" {
  for_each = local.topics

  name              = each.value
  kms_master_key_id = var.kms_master_key_id
}

data "aws_iam_policy_document" "topic" {
  for_each = local.topics

  # The account's own principals, as an SNS topic's default policy allows, and nobody else.
  statement {
    sid = "AccountUse"
    actions = [
      "sns:Publish", "sns:Subscribe", "sns:Receive", "sns:GetTopicAttributes",
      "sns:SetTopicAttributes", "sns:ListSubscriptionsByTopic", "sns:DeleteTopic",
      "sns:AddPermission", "sns:RemovePermission",
    ]
    resources = [aws_sns_topic.this[each.key].arn]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  dynamic "statement" {
    for_each = length(var.publisher_service_principals[each.key]) > 0 ? [1] : []
    content {
      sid       = "ServicePublish"
      actions   = ["sns:Publish"]
      resources = [aws_sns_topic.this[each.key].arn]
      principals {
        type        = "Service"
        identifiers = var.publisher_service_principals[each.key]
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [data.aws_caller_identity.current.account_id]
      }
    }
  }

  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["sns:Publish", "sns:Subscribe", "sns:Receive"]
    resources = [aws_sns_topic.this[each.key].arn]
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

resource "aws_sns_topic_policy" "this" {
  for_each = local.topics

  arn    = aws_sns_topic.this[each.key].arn
  policy = data.aws_iam_policy_document.topic[each.key].json
}

# Each address receives a confirmation email; nothing is delivered until it is confirmed.
resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.notification_emails)

  topic_arn = aws_sns_topic.this["notifications"].arn
  protocol  = "email"
  endpoint  = each.value
}

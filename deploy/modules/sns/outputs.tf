output "trigger_topic_arn" {
  description = "ARN of the trigger topic (the dispatcher's subscription; the gateway's MLGW_TRIGGER_TOPIC_ARN)."
  value       = aws_sns_topic.this["trigger"].arn
}

output "trigger_topic_name" {
  description = "Name of the trigger topic."
  value       = aws_sns_topic.this["trigger"].name
}

output "notifications_topic_arn" {
  description = "ARN of the notifications topic (the gateway's MLGW_NOTIFY_TOPIC_ARN, the monitor's target)."
  value       = aws_sns_topic.this["notifications"].arn
}

output "notifications_topic_name" {
  description = "Name of the notifications topic."
  value       = aws_sns_topic.this["notifications"].name
}

output "topic_arns" {
  description = "Both topic ARNs by role (trigger, notifications)."
  value       = { for k, t in aws_sns_topic.this : k => t.arn }
}

output "email_subscription_arns" {
  description = "Email subscriptions by address (\"pending confirmation\" until each is confirmed)."
  value       = { for e, s in aws_sns_topic_subscription.email : e => s.arn }
}

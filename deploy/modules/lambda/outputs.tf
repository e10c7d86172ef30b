output "dispatcher_function_name" {
  description = "Name of the trigger dispatcher function."
  value       = aws_lambda_function.dispatcher.function_name
}

output "dispatcher_function_arn" {
  description = "ARN of the trigger dispatcher function."
  value       = aws_lambda_function.dispatcher.arn
}

output "trigger_dlq_url" {
  description = "Dead-letter queue of the dispatcher: trigger messages it refused or could not submit."
  value       = aws_sqs_queue.dlq["trigger"].id
}

output "trigger_dlq_arn" {
  description = "ARN of the dispatcher's dead-letter queue."
  value       = aws_sqs_queue.dlq["trigger"].arn
}

output "monitor_function_name" {
  description = "Name of the job monitor function (null without enable_monitor)."
  value       = one([for f in aws_lambda_function.monitor : f.function_name])
}

output "monitor_dlq_url" {
  description = "Dead-letter queue of the monitor (null without enable_monitor)."
  value       = one([for k, q in aws_sqs_queue.dlq : q.id if k == "monitor"])
}

output "log_group_names" {
  description = "Log groups of the functions by function (dispatcher, monitor)."
  value       = { for k, g in aws_cloudwatch_log_group.this : k => g.name }
}

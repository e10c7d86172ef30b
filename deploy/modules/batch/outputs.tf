output "job_queue_arns" {
  description = "Job queue ARNs by compute type (gpu, cpu)."
  value       = { for k, q in aws_batch_job_queue.this : k => q.arn }
}

output "job_queue_names" {
  description = "Job queue names by compute type."
  value       = { for k, q in aws_batch_job_queue.this : k => q.name }
}

output "job_definition_arns" {
  description = "Job definition ARNs (with revision) by compute type."
  value       = { for k, d in aws_batch_job_definition.this : k => d.arn }
}

output "job_definition_names" {
  description = "Job definition names by compute type (SubmitJob with a name uses the latest active revision)."
  value       = { for k, d in aws_batch_job_definition.this : k => d.name }
}

output "compute_environment_arns" {
  description = "Compute environment ARNs by compute type."
  value       = { for k, c in aws_batch_compute_environment.this : k => c.arn }
}

output "job_log_group_name" {
  description = "CloudWatch Logs group of the jobs (the gateway's MLGW_BATCH_LOG_GROUP)."
  value       = aws_cloudwatch_log_group.jobs.name
}

output "job_log_group_arn" {
  description = "ARN of the jobs' log group."
  value       = aws_cloudwatch_log_group.jobs.arn
}

output "job_role_arn" {
  description = "Role the jobs' code runs as."
  value       = aws_iam_role.job.arn
}

output "execution_role_arn" {
  description = "Role that pulls the job images and ships their logs."
  value       = aws_iam_role.execution.arn
}

output "instance_role_arn" {
  description = "Role of the Batch instances."
  value       = aws_iam_role.instance.arn
}

output "service_role_arn" {
  description = "Role Batch manages the compute environments with."
  value       = aws_iam_role.service.arn
}

output "url" {
  description = "The gateway's base URL (https://<domain_name>)."
  value       = local.url
}

output "load_balancer_dns_name" {
  description = "DNS name of the load balancer: point domain_name at it (CNAME or alias) when route53_zone_id is not set."
  value       = aws_lb.this.dns_name
}

output "load_balancer_zone_id" {
  description = "Hosted zone of the load balancer (for an alias record)."
  value       = aws_lb.this.zone_id
}

output "cluster_name" {
  description = "ECS cluster of the gateway."
  value       = aws_ecs_cluster.this.name
}

output "service_name" {
  description = "ECS service of the gateway."
  value       = aws_ecs_service.this.name
}

output "callback_dlq_url" {
  description = "Dead-letter queue of Batch events EventBridge could not deliver to /events/batch (and of restarts after a password rotation that failed)."
  value       = aws_sqs_queue.callback_dlq.url
}

output "log_group_name" {
  description = "CloudWatch Logs group of the gateway's tasks."
  value       = aws_cloudwatch_log_group.this.name
}

output "task_security_group_id" {
  description = "Security group of the gateway's tasks (the EFS and database rules name it)."
  value       = aws_security_group.tasks.id
}

output "database_endpoint" {
  description = "Host name of the RDS instance."
  value       = aws_db_instance.this.address
}

output "database_master_secret_arn" {
  description = "Secrets Manager secret of the database's master user (made and rotated by RDS)."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "secret_arns" {
  description = "Secrets Manager secrets the module made, by name (database_url, callback, webhook, smtp when set)."
  value = merge(
    { database_url = aws_secretsmanager_secret.database_url.arn },
    { for k, s in aws_secretsmanager_secret.generated : k => s.arn },
    { for s in aws_secretsmanager_secret.smtp : "smtp" => s.arn },
  )
}

output "create_admin_key_command" {
  description = "Creates the first admin API key inside a running task (ECS Exec); prints the key once."
  value       = "aws ecs execute-command --region ${local.region} --cluster ${aws_ecs_cluster.this.name} --container gateway --interactive --task \"$(aws ecs list-tasks --region ${local.region} --cluster ${aws_ecs_cluster.this.name} --service-name ${aws_ecs_service.this.name} --query 'taskArns[0]' --output text)\" --command \"/usr/local/bin/ml-gateway keys create --name admin --scopes admin\""
}

output "task_environment" {
  description = "The task's plain environment (name => value); never a secret."
  value       = local.environment
}

output "task_secret_names" {
  description = "Names the task gets from Secrets Manager (ECS secrets)."
  value       = sort(keys(local.secrets))
}

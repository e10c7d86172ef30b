# ---- the seed's outputs ----

output "trigger_events_topic_arn" {
  description = "SNS topic to publish trigger messages to (aws sns publish --topic-arn …)."
  value       = module.sns.trigger_topic_arn
}

output "ml_input_bucket" {
  description = "Bucket for job scripts and input data (the jobs' ML_INPUT_BUCKET)."
  value       = module.s3.input_bucket
}

output "trigger_dlq_url" {
  description = "Dead-letter queue of trigger messages the dispatcher refused or could not submit."
  value       = module.lambda.trigger_dlq_url
}

output "monitor_dlq_url" {
  description = "Dead-letter queue of the job monitor (null unless enable_monitor)."
  value       = module.lambda.monitor_dlq_url
}

# ---- pipeline ----

output "aws_region" {
  description = "Region of the pipeline."
  value       = var.aws_region
}

output "notifications_topic_arn" {
  description = "SNS topic of job notifications (email subscriptions)."
  value       = module.sns.notifications_topic_arn
}

output "ml_output_bucket" {
  description = "Bucket of job outputs (the jobs' ML_OUTPUT_BUCKET)."
  value       = module.s3.output_bucket
}

output "ml_models_bucket" {
  description = "Bucket of model files."
  value       = module.s3.models_bucket
}

output "bucket_arns" {
  description = "Bucket ARNs by role: input, output, models."
  value       = module.s3.bucket_arns
}

output "gpu_job_queue" {
  description = "ARN of the GPU job queue."
  value       = module.batch.job_queue_arns["gpu"]
}

output "cpu_job_queue" {
  description = "ARN of the CPU job queue."
  value       = module.batch.job_queue_arns["cpu"]
}

output "job_queue_arns" {
  description = "Job queue ARNs by compute type."
  value       = module.batch.job_queue_arns
}

output "gpu_job_definition" {
  description = "Name of the GPU job definition (its latest revision is used)."
  value       = module.batch.job_definition_names["gpu"]
}

output "cpu_job_definition" {
  description = "Name of the CPU job definition."
  value       = module.batch.job_definition_names["cpu"]
}

output "job_definition_arns" {
  description = "Job definition ARNs (with revision) by compute type."
  value       = module.batch.job_definition_arns
}

output "job_log_group" {
  description = "CloudWatch Logs group of the jobs (aws logs tail … --follow)."
  value       = module.batch.job_log_group_name
}

output "job_log_group_arn" {
  description = "ARN of the jobs' log group (for a reader's logs:GetLogEvents grant)."
  value       = module.batch.job_log_group_arn
}

output "ecr_repository_urls" {
  description = "ECR repository URLs by image: ml-python-slim, ml-python, ml-gateway."
  value       = module.ecr.repository_urls
}

output "dispatcher_function_name" {
  description = "Name of the trigger dispatcher Lambda function."
  value       = module.lambda.dispatcher_function_name
}

# ---- for a gateway hosted outside modules/gateway ----

output "network" {
  description = "VPC, subnets and security groups."
  value = {
    vpc_id                  = module.vpc.vpc_id
    vpc_cidr_block          = module.vpc.vpc_cidr_block
    public_subnet_ids       = module.vpc.public_subnet_ids
    availability_zones      = module.vpc.availability_zones
    batch_security_group_id = module.vpc.batch_security_group_id
    efs_security_group_id   = module.vpc.efs_security_group_id
  }
}

output "efs" {
  description = "The model cache: file system and /models access point."
  value = {
    file_system_id   = module.efs.file_system_id
    file_system_arn  = module.efs.file_system_arn
    access_point_id  = module.efs.access_point_id
    access_point_arn = module.efs.access_point_arn
  }
}

# Exactly the settings the gateway (README.md's settings tables) needs to hand jobs to this
# pipeline: `dispatch: batch` submits to these queues and definitions, `dispatch: sns`
# publishes to the trigger topic, finished jobs are summarised on the notifications topic,
# GET /jobs/{id}/logs reads the job log group. Set them on the gateway's process or task:
#   terraform output -json gateway_env | jq -r 'to_entries[] | "\(.key)=\(.value)"'
# tests/gateway_env checks every name against the gateway's own settings table; the gateway
# module (enable_gateway) puts them into its task's environment.
locals {
  gateway_env = {
    AWS_REGION              = var.aws_region
    MLGW_DISPATCH           = "batch"
    MLGW_GPU_JOB_QUEUE      = module.batch.job_queue_arns["gpu"]
    MLGW_CPU_JOB_QUEUE      = module.batch.job_queue_arns["cpu"]
    MLGW_GPU_JOB_DEFINITION = module.batch.job_definition_names["gpu"]
    MLGW_CPU_JOB_DEFINITION = module.batch.job_definition_names["cpu"]
    MLGW_GPU_JOB_VCPUS      = tostring(var.ml_gpu_job_vcpus)
    MLGW_GPU_JOB_MEMORY     = tostring(var.ml_gpu_job_memory)
    MLGW_GPU_JOB_GPUS       = tostring(var.ml_gpu_job_gpus)
    MLGW_CPU_JOB_VCPUS      = tostring(var.ml_cpu_job_vcpus)
    MLGW_CPU_JOB_MEMORY     = tostring(var.ml_cpu_job_memory)
    MLGW_TRIGGER_TOPIC_ARN  = module.sns.trigger_topic_arn
    MLGW_NOTIFY_TOPIC_ARN   = module.sns.notifications_topic_arn
    MLGW_BATCH_LOG_GROUP    = module.batch.job_log_group_name
    ML_INPUT_BUCKET         = module.s3.input_bucket
    ML_OUTPUT_BUCKET        = module.s3.output_bucket
  }
}

output "gateway_env" {
  description = "Environment of a gateway dispatching to this pipeline (name => value)."
  value       = local.gateway_env
}

# ---- the gateway on AWS (enable_gateway) ----

output "gateway_url" {
  description = "Base URL of the deployed gateway (null unless enable_gateway)."
  value       = var.enable_gateway ? module.gateway[0].url : null
}

output "gateway_load_balancer_dns_name" {
  description = "Load balancer to point gateway_domain_name at when gateway_route53_zone_id is not set."
  value       = var.enable_gateway ? module.gateway[0].load_balancer_dns_name : null
}

output "gateway_callback_dlq_url" {
  description = "Dead-letter queue of Batch events EventBridge could not deliver to /events/batch."
  value       = var.enable_gateway ? module.gateway[0].callback_dlq_url : null
}

output "gateway_log_group" {
  description = "CloudWatch Logs group of the gateway's tasks (aws logs tail … --follow)."
  value       = var.enable_gateway ? module.gateway[0].log_group_name : null
}

output "gateway_create_admin_key_command" {
  description = "Command creating the first admin API key in a running gateway task (ECS Exec; deploy/README.md)."
  value       = var.enable_gateway ? module.gateway[0].create_admin_key_command : null
}

output "gateway_task_environment" {
  description = "The gateway task's plain environment (no secrets; tests/deploy/test_gateway_task.py checks each name)."
  value       = var.enable_gateway ? module.gateway[0].task_environment : null
}

output "gateway_task_secret_names" {
  description = "Settings the gateway task gets from Secrets Manager."
  value       = var.enable_gateway ? module.gateway[0].task_secret_names : null
}

output "gateway_secret_arns" {
  description = "The gateway's Secrets Manager secrets by name, and the database's master secret (rotation: deploy/README.md)."
  value       = var.enable_gateway ? merge(module.gateway[0].secret_arns, { database_master = module.gateway[0].database_master_secret_arn }) : null
}

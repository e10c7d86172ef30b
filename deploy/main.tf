# The ML pipeline on AWS, one module per service:
#
#   vpc     public subnets, internet gateway, S3 endpoint, security groups (no NAT)
#   sns     trigger topic, notifications topic (+ email subscriptions)
#   s3      input, output and models buckets
#   efs     model cache mounted by jobs at /opt/models
#   ecr     repositories of the job images and the gateway
#   batch   GPU and CPU compute environments, job queues and job definitions
#   lambda  trigger dispatcher (+ optional job monitor) with dead-letter queues
#   gateway the gateway itself (enable_gateway): ECS Fargate behind an HTTPS load balancer,
#           PostgreSQL on RDS, secrets, EventBridge callbacks to /events/batch

locals {
  # NFS clients of the model cache besides Batch: the gateway's tasks mount it read-only.
  gateway_efs_client = var.enable_gateway ? { gateway = module.gateway[0].task_security_group_id } : {}
  efs_clients        = merge(var.efs_client_security_group_ids, local.gateway_efs_client)
}

module "vpc" {
  source = "./modules/vpc"

  name                          = var.project_name
  cidr_block                    = var.vpc_cidr
  az_count                      = var.az_count
  efs_client_security_group_ids = local.efs_clients
  flow_logs_retention_days      = var.vpc_flow_logs_retention_days
}

module "sns" {
  source = "./modules/sns"

  name                = var.project_name
  notification_emails = var.notification_emails
}

module "s3" {
  source = "./modules/s3"

  name                   = var.project_name
  output_expiration_days = var.output_expiration_days
  force_destroy          = var.force_destroy
}

module "efs" {
  source = "./modules/efs"

  name              = var.project_name
  subnets           = module.vpc.public_subnets
  security_group_id = module.vpc.efs_security_group_id
}

module "ecr" {
  source = "./modules/ecr"

  name         = var.project_name
  force_delete = var.force_destroy
}

module "batch" {
  source = "./modules/batch"

  name              = var.project_name
  subnet_ids        = module.vpc.public_subnet_ids
  security_group_id = module.vpc.batch_security_group_id
  container_image   = var.ml_container_image

  input_bucket_arn  = module.s3.bucket_arns["input"]
  output_bucket_arn = module.s3.bucket_arns["output"]
  models_bucket_arn = module.s3.bucket_arns["models"]

  efs_file_system_id   = module.efs.file_system_id
  efs_file_system_arn  = module.efs.file_system_arn
  efs_access_point_id  = module.efs.access_point_id
  efs_access_point_arn = module.efs.access_point_arn

  gpu_instance_types     = var.ml_gpu_instance_types
  cpu_instance_types     = var.ml_cpu_instance_types
  gpu_max_vcpus          = var.ml_gpu_max_vcpus
  cpu_max_vcpus          = var.ml_cpu_max_vcpus
  gpu_use_spot_instances = var.ml_gpu_use_spot_instances
  cpu_use_spot_instances = var.ml_cpu_use_spot_instances
  gpu_job_vcpus          = var.ml_gpu_job_vcpus
  gpu_job_memory         = var.ml_gpu_job_memory
  gpu_job_gpus           = var.ml_gpu_job_gpus
  cpu_job_vcpus          = var.ml_cpu_job_vcpus
  cpu_job_memory         = var.ml_cpu_job_memory
  job_timeout_seconds    = var.ml_job_timeout_seconds
  log_retention_days     = var.log_retention_days
}

module "lambda" {
  source = "./modules/lambda"

  name                    = var.project_name
  trigger_topic_arn       = module.sns.trigger_topic_arn
  notifications_topic_arn = module.sns.notifications_topic_arn
  job_queue_arns          = module.batch.job_queue_arns
  job_definition_names    = module.batch.job_definition_names
  input_bucket            = module.s3.input_bucket
  output_bucket           = module.s3.output_bucket

  gpu_job_vcpus  = var.ml_gpu_job_vcpus
  gpu_job_memory = var.ml_gpu_job_memory
  gpu_job_gpus   = var.ml_gpu_job_gpus
  cpu_job_vcpus  = var.ml_cpu_job_vcpus
  cpu_job_memory = var.ml_cpu_job_memory

  enable_monitor     = var.enable_monitor
  log_retention_days = var.log_retention_days
}

module "gateway" {
  source = "./modules/gateway"
  count  = var.enable_gateway ? 1 : 0

  name        = var.project_name
  vpc_id      = module.vpc.vpc_id
  subnet_ids  = module.vpc.public_subnet_ids
  gateway_env = local.gateway_env

  job_queue_arns       = module.batch.job_queue_arns
  job_definition_names = module.batch.job_definition_names
  topic_arns           = module.sns.topic_arns
  bucket_arns          = module.s3.bucket_arns
  job_log_group_arn    = module.batch.job_log_group_arn

  efs_file_system_id   = module.efs.file_system_id
  efs_file_system_arn  = module.efs.file_system_arn
  efs_access_point_id  = module.efs.access_point_id
  efs_access_point_arn = module.efs.access_point_arn

  image                = var.gateway_image
  image_repository_arn = module.ecr.repository_arns["ml-gateway"]
  domain_name          = var.gateway_domain_name
  certificate_arn      = var.gateway_certificate_arn
  route53_zone_id      = var.gateway_route53_zone_id
  ingress_cidrs        = var.gateway_ingress_cidrs
  desired_count        = var.gateway_desired_count
  min_count            = var.gateway_min_count
  max_count            = var.gateway_max_count
  extra_environment    = var.gateway_extra_environment
  log_retention_days   = var.log_retention_days

  smtp_url      = var.gateway_smtp_url
  smtp_from     = var.gateway_smtp_from
  smtp_user     = var.gateway_smtp_user
  smtp_password = var.gateway_smtp_password
  notify_emails = var.gateway_notify_emails

  db_instance_class      = var.gateway_db_instance_class
  db_multi_az            = var.gateway_db_multi_az
  db_deletion_protection = var.gateway_db_deletion_protection

  sns_event_topic_arns = var.gateway_sns_event_topic_arns
}

variable "name" {
  description = "Prefix of every resource name (the project name)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2 to 31 of a-z, 0-9 and -, starting with a letter."
  }
}

# ---- from the pipeline's modules ----------------------------------------------------------

variable "vpc_id" {
  description = "VPC of the pipeline (module vpc)."
  type        = string
}

variable "subnet_ids" {
  description = "Public subnets in at least two AZs: the load balancer, the tasks (public IPs, no NAT) and the database's subnet group."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids must name at least two subnets (two AZs): the load balancer and RDS need them."
  }
}

variable "gateway_env" {
  description = "The pipeline's settings for the gateway (the root output gateway_env: queues, definitions, topics, buckets, defaults, log group, region)."
  type        = map(string)
}

variable "job_queue_arns" {
  description = "Batch job queue ARNs by compute type (the grants of SubmitJob)."
  type        = map(string)
}

variable "job_definition_names" {
  description = "Batch job definition names by compute type (SubmitJob on every revision of each)."
  type        = map(string)
}

variable "topic_arns" {
  description = "The pipeline's SNS topics the gateway publishes to: trigger (dispatch sns) and notifications."
  type        = map(string)
}

variable "bucket_arns" {
  description = "Bucket ARNs by role (input, output, models) the gateway reads and writes."
  type        = map(string)
}

variable "job_log_group_arn" {
  description = "ARN of the jobs' CloudWatch Logs group (GET /jobs/{id}/logs reads it)."
  type        = string
}

variable "efs_file_system_id" {
  description = "The model cache's EFS file system, mounted read-only at /opt/models."
  type        = string
}

variable "efs_file_system_arn" {
  description = "ARN of the model cache's file system (the task role's ClientMount grant)."
  type        = string
}

variable "efs_access_point_id" {
  description = "The /models access point the tasks mount through."
  type        = string
}

variable "efs_access_point_arn" {
  description = "ARN of the /models access point (the condition of the ClientMount grant)."
  type        = string
}

# ---- the service --------------------------------------------------------------------------

variable "image" {
  description = "The ml-gateway image (ECR URI with an immutable tag or digest, as images/build-and-push.sh prints it)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]*(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9_.-]+|@sha256:[a-f0-9]{64})$", var.image))
    error_message = "image must be a registry/repository:tag (or @sha256:digest) image reference."
  }
}

variable "image_repository_arn" {
  description = "ARN of the ECR repository of image (module ecr, ml-gateway): the only one the execution role may pull from."
  type        = string
}

variable "domain_name" {
  description = "Host name the gateway is reached at (https://<domain_name>); the certificate must cover it and DNS must point it at the load balancer (route53_zone_id does that)."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.domain_name))
    error_message = "domain_name must be a lower-case DNS name such as ml.example.com."
  }
}

variable "certificate_arn" {
  description = "ACM certificate of domain_name, in the same region, for the HTTPS listener."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone of domain_name: when set, an alias record points domain_name at the load balancer; null: make the record yourself."
  type        = string
  default     = null
}

variable "ingress_cidrs" {
  description = "IPv4 ranges allowed to reach the load balancer on 80 and 443 (EventBridge API destinations and SNS come from AWS's public addresses: keep 0.0.0.0/0 when they are used)."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.ingress_cidrs) > 0 && alltrue([for c in var.ingress_cidrs : can(cidrnetmask(c))])
    error_message = "ingress_cidrs must hold at least one IPv4 CIDR block."
  }
}

variable "tls_policy" {
  description = "SSL policy of the HTTPS listener (TLS 1.3 and 1.2 with forward secrecy only)."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
}

variable "task_cpu" {
  description = "CPU units of a task (1024 = one vCPU)."
  type        = number
  default     = 512
}

variable "task_memory" {
  description = "Memory of a task in MiB (a valid Fargate combination with task_cpu)."
  type        = number
  default     = 1024
}

variable "desired_count" {
  description = "Tasks at deployment (spread across the AZs); autoscaling keeps between min_count and max_count."
  type        = number
  default     = 2
}

variable "min_count" {
  description = "Fewest tasks autoscaling keeps (2: one per AZ survives an AZ or a task loss)."
  type        = number
  default     = 2

  validation {
    condition     = var.min_count >= 1
    error_message = "min_count must be at least 1."
  }
}

variable "max_count" {
  description = "Most tasks autoscaling starts (each holds MLGW_DB_POOL_SIZE + MLGW_DB_WORKER_POOL_SIZE + MLGW_DB_WRITERS connections, and a few of its own: LISTEN, the job cache's poller, its presence lock; keep max_count x that below the database's max_connections)."
  type        = number
  default     = 6
}

variable "cpu_target_percent" {
  description = "Average CPU utilisation of the service that target tracking keeps."
  type        = number
  default     = 60

  validation {
    condition     = var.cpu_target_percent >= 10 && var.cpu_target_percent <= 90
    error_message = "cpu_target_percent must be between 10 and 90."
  }
}

variable "shutdown_timeout_seconds" {
  description = "MLGW_SHUTDOWN_TIMEOUT: seconds in-flight requests get after SIGTERM; the target group's deregistration delay and the container's stop timeout follow it."
  type        = number
  default     = 10

  validation {
    condition     = var.shutdown_timeout_seconds >= 1 && var.shutdown_timeout_seconds <= 100
    error_message = "shutdown_timeout_seconds must be between 1 and 100 (Fargate stops a container at most 120 s after SIGTERM)."
  }
}

variable "extra_environment" {
  description = "Further gateway settings (README.md's table) for the task's plain environment, e.g. MLGW_RATE_LIMIT. Never a secret (those are ECS secrets), nor what the module sets itself."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.extra_environment) : can(regex("^(MLGW|ML)_[A-Z0-9_]+$", k))])
    error_message = "extra_environment takes gateway settings only (MLGW_* and ML_* names of README.md's table)."
  }

  validation {
    condition = length(setintersection(keys(var.extra_environment), [
      "DATABASE_URL", "MLGW_DATABASE_PASSWORD", "MLGW_CALLBACK_SECRET", "MLGW_WEBHOOK_SECRET",
      "MLGW_SMTP_PASSWORD", "MLGW_LOCAL_JOB_AWS_SECRET_ACCESS_KEY",
    ])) == 0
    error_message = "extra_environment must not hold secrets: the module passes them as ECS secrets from Secrets Manager."
  }

  validation {
    condition = length(setintersection(keys(var.extra_environment), [
      "MLGW_LISTEN", "MLGW_MIGRATIONS_DIR", "MLGW_SHUTDOWN_TIMEOUT", "MLGW_CALLBACK_HEADER",
      "MLGW_CACHE_DIR", "MLGW_CACHE_DISPATCH", "MLGW_SMTP_URL", "MLGW_SMTP_FROM", "MLGW_SMTP_USER",
      "MLGW_NOTIFY_EMAILS", "MLGW_SNS_TOPIC_ARNS",
    ])) == 0
    error_message = "extra_environment must not set what the module sets (listen address, paths, cache, callbacks, SMTP, SNS): use the module's variables."
  }
}

variable "log_retention_days" {
  description = "Days to keep the gateway's logs."
  type        = number
  default     = 30
}

# ---- notifications ------------------------------------------------------------------------

variable "smtp_url" {
  description = "MLGW_SMTP_URL, e.g. smtp://email-smtp.us-east-1.amazonaws.com:587 for SES (null: no email)."
  type        = string
  default     = null
}

variable "smtp_from" {
  description = "MLGW_SMTP_FROM (an SES-verified identity with SES)."
  type        = string
  default     = null
}

variable "smtp_user" {
  description = "MLGW_SMTP_USER (SES: the SMTP user name of an IAM user's SMTP credentials)."
  type        = string
  default     = null
}

variable "smtp_password" {
  description = "MLGW_SMTP_PASSWORD, kept in Secrets Manager and injected as an ECS secret (null: none)."
  type        = string
  default     = null
  sensitive   = true
}

variable "notify_emails" {
  description = "MLGW_NOTIFY_EMAILS: recipients of every job's notification (needs smtp_url)."
  type        = list(string)
  default     = []
}

# ---- the database -------------------------------------------------------------------------

variable "db_instance_class" {
  description = "RDS instance class of PostgreSQL."
  type        = string
  default     = "db.t4g.small"
}

variable "db_engine_version" {
  description = "PostgreSQL version (16.x; a major version alone lets RDS pick and upgrade the minor)."
  type        = string
  default     = "16"

  validation {
    condition     = can(regex("^16(\\.[0-9]+)?$", var.db_engine_version))
    error_message = "db_engine_version must be 16 or 16.<minor>."
  }
}

variable "db_allocated_storage" {
  description = "Initial storage in GiB (gp3)."
  type        = number
  default     = 20
}

variable "db_max_allocated_storage" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
  default     = 100
}

variable "db_multi_az" {
  description = "A standby in a second AZ with automatic failover (about doubles the database's cost)."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery)."
  type        = number
  default     = 7

  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 1 and 35."
  }
}

variable "db_performance_insights" {
  description = "Performance Insights on the database (7 days kept, free tier; check that db_instance_class offers it)."
  type        = bool
  default     = false
}

variable "db_deletion_protection" {
  description = "Refuse to delete the database (turn off and apply before a destroy)."
  type        = bool
  default     = true
}

# ---- callbacks ----------------------------------------------------------------------------

variable "callback_rate_per_second" {
  description = "Invocation rate limit of the EventBridge API destination (events per second to /events/batch)."
  type        = number
  default     = 20

  validation {
    condition     = var.callback_rate_per_second >= 1 && var.callback_rate_per_second <= 300
    error_message = "callback_rate_per_second must be between 1 and 300."
  }
}

variable "sns_event_topic_arns" {
  description = "SNS topics to subscribe https://<domain_name>/events/sns to (their ARNs become MLGW_SNS_TOPIC_ARNS); empty: no SNS path."
  type        = list(string)
  default     = []
}

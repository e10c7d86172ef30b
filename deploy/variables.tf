variable "project_name" {
  description = "Name every resource starts with (bucket names add the account ID)."
  type        = string
  default     = "ml-pipeline"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.project_name))
    error_message = "project_name must be 2 to 31 of a-z, 0-9 and -, starting with a letter."
  }
}

variable "aws_region" {
  description = "AWS region of the pipeline."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+$", var.aws_region))
    error_message = "aws_region must be a region name such as us-east-1."
  }
}

variable "tags" {
  description = "Tags added to every resource (besides Project, ManagedBy and Component)."
  type        = map(string)
  default     = {}
}

# ---- network ----

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr))
    error_message = "vpc_cidr must be an IPv4 CIDR block."
  }
}

variable "az_count" {
  description = "Availability zones (one public subnet and one EFS mount target each)."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 6
    error_message = "az_count must be between 2 and 6."
  }
}

variable "efs_client_security_group_ids" {
  description = "Further security groups allowed to mount the model cache (NFS 2049), by a static name."
  type        = map(string)
  default     = {}
}

variable "vpc_flow_logs_retention_days" {
  description = "Days to keep flow logs of rejected traffic (0: none)."
  type        = number
  default     = 0
}

# ---- GPU jobs (the seed's names and defaults) ----

variable "ml_gpu_job_vcpus" {
  description = "Default vCPUs of a GPU job (a message's data.vcpus overrides it)."
  type        = number
  default     = 4

  validation {
    condition     = var.ml_gpu_job_vcpus >= 1 && floor(var.ml_gpu_job_vcpus) == var.ml_gpu_job_vcpus
    error_message = "ml_gpu_job_vcpus must be a whole number, at least 1."
  }
}

variable "ml_gpu_job_memory" {
  description = "Default memory of a GPU job in MiB (a message's data.memory overrides it)."
  type        = number
  default     = 16384

  validation {
    condition     = var.ml_gpu_job_memory >= 512 && floor(var.ml_gpu_job_memory) == var.ml_gpu_job_memory
    error_message = "ml_gpu_job_memory must be a whole number of MiB, at least 512."
  }
}

variable "ml_gpu_job_gpus" {
  description = "Default GPUs of a GPU job (a message's data.gpus overrides it)."
  type        = number
  default     = 1

  validation {
    condition     = var.ml_gpu_job_gpus >= 1 && var.ml_gpu_job_gpus <= 8 && floor(var.ml_gpu_job_gpus) == var.ml_gpu_job_gpus
    error_message = "ml_gpu_job_gpus must be a whole number from 1 to 8."
  }
}

variable "ml_gpu_use_spot_instances" {
  description = "Run GPU jobs on spot instances (SPOT_PRICE_CAPACITY_OPTIMIZED, about 70% cheaper; jobs retried on reclaim) instead of on-demand (BEST_FIT_PROGRESSIVE)."
  type        = bool
  default     = true
}

variable "ml_gpu_instance_types" {
  description = "Instance families or types of the GPU compute environment."
  type        = list(string)
  default     = ["g4dn", "g5"]

  validation {
    condition     = length(var.ml_gpu_instance_types) > 0
    error_message = "ml_gpu_instance_types must not be empty."
  }
}

variable "ml_gpu_max_vcpus" {
  description = "Most vCPUs the GPU environment scales to; keep within the account's G and VT vCPU quota."
  type        = number
  default     = 64

  validation {
    condition     = var.ml_gpu_max_vcpus >= 4
    error_message = "ml_gpu_max_vcpus must be at least 4 (one g4dn.xlarge)."
  }
}

# ---- CPU jobs ----

variable "ml_cpu_job_vcpus" {
  description = "Default vCPUs of a CPU job (a message's data.vcpus overrides it)."
  type        = number
  default     = 2

  validation {
    condition     = var.ml_cpu_job_vcpus >= 1 && floor(var.ml_cpu_job_vcpus) == var.ml_cpu_job_vcpus
    error_message = "ml_cpu_job_vcpus must be a whole number, at least 1."
  }
}

variable "ml_cpu_job_memory" {
  description = "Default memory of a CPU job in MiB (a message's data.memory overrides it)."
  type        = number
  default     = 4096

  validation {
    condition     = var.ml_cpu_job_memory >= 512 && floor(var.ml_cpu_job_memory) == var.ml_cpu_job_memory
    error_message = "ml_cpu_job_memory must be a whole number of MiB, at least 512."
  }
}

variable "ml_cpu_use_spot_instances" {
  description = "Run CPU jobs on spot instances instead of on-demand."
  type        = bool
  default     = true
}

variable "ml_cpu_instance_types" {
  description = "Instance families or types of the CPU compute environment."
  type        = list(string)
  default     = ["t3", "m5"]

  validation {
    condition     = length(var.ml_cpu_instance_types) > 0
    error_message = "ml_cpu_instance_types must not be empty."
  }
}

variable "ml_cpu_max_vcpus" {
  description = "Most vCPUs the CPU environment scales to."
  type        = number
  default     = 32

  validation {
    condition     = var.ml_cpu_max_vcpus >= 2
    error_message = "ml_cpu_max_vcpus must be at least 2."
  }
}

# ---- jobs ----

variable "ml_container_image" {
  description = "Image of the job definitions: the ECR URI of ml-python (GPU) or ml-python-slim, as pushed (see the ecr_repository_urls output)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]*(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9_.-]+|@sha256:[a-f0-9]{64})$", var.ml_container_image))
    error_message = "ml_container_image must be a registry/repository:tag (or @sha256:digest) image reference."
  }
}

variable "ml_job_timeout_seconds" {
  description = "Longest an attempt of a job may run (a message's timeout_seconds overrides it)."
  type        = number
  default     = 86400

  validation {
    condition     = var.ml_job_timeout_seconds >= 60
    error_message = "ml_job_timeout_seconds must be at least 60."
  }
}

variable "output_expiration_days" {
  description = "Days job outputs are kept in the output bucket (0: forever)."
  type        = number
  default     = 90

  validation {
    condition     = var.output_expiration_days >= 0
    error_message = "output_expiration_days must be 0 or more."
  }
}

# ---- notifications and operations ----

variable "notification_emails" {
  description = "Addresses subscribed to the notifications topic (each must confirm the email SNS sends)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.notification_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "notification_emails must hold email addresses."
  }
}

variable "enable_monitor" {
  description = "Deploy the seed's job monitor Lambda (Batch job state change -> notifications topic). Off where the gateway receives the events and sends the notifications."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Days to keep the logs of jobs and functions."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, …)."
  }
}

variable "force_destroy" {
  description = "Let terraform destroy delete non-empty buckets and repositories (their contents are lost)."
  type        = bool
  default     = false
}

# ---- the gateway on AWS (modules/gateway) ----

variable "enable_gateway" {
  description = "Host the gateway itself: ECS Fargate behind an HTTPS load balancer, PostgreSQL on RDS, secrets, EventBridge callbacks (modules/gateway). Costs money while idle (deploy/README.md)."
  type        = bool
  default     = true
}

variable "gateway_image" {
  description = "The ml-gateway image: its ECR URI with the revision tag images/build-and-push.sh prints (needed with enable_gateway)."
  type        = string
  default     = null
}

variable "gateway_domain_name" {
  description = "Host name of the gateway (https://<name>); the certificate must cover it."
  type        = string
  default     = null
}

variable "gateway_certificate_arn" {
  description = "ACM certificate of gateway_domain_name in aws_region (the HTTPS listener's)."
  type        = string
  default     = null
}

variable "gateway_route53_zone_id" {
  description = "Route 53 hosted zone of gateway_domain_name: an alias record to the load balancer is made there (null: make the DNS record yourself)."
  type        = string
  default     = null
}

variable "gateway_ingress_cidrs" {
  description = "IPv4 ranges allowed to the load balancer (keep 0.0.0.0/0 for EventBridge and SNS callbacks)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "gateway_desired_count" {
  description = "Gateway tasks at the first deployment (autoscaling decides afterwards)."
  type        = number
  default     = 2
}

variable "gateway_min_count" {
  description = "Fewest gateway tasks (2: one per AZ)."
  type        = number
  default     = 2
}

variable "gateway_max_count" {
  description = "Most gateway tasks CPU autoscaling starts."
  type        = number
  default     = 6
}

variable "gateway_extra_environment" {
  description = "Further gateway settings (README.md's table) for the task, e.g. { MLGW_RATE_LIMIT = \"100\" }; never secrets nor what modules/gateway sets itself (its validation refuses both)."
  type        = map(string)
  default     = {}
}

variable "gateway_smtp_url" {
  description = "MLGW_SMTP_URL (SES: smtp://email-smtp.<region>.amazonaws.com:587); null: no email from the gateway."
  type        = string
  default     = null
}

variable "gateway_smtp_from" {
  description = "MLGW_SMTP_FROM, an address SES has verified."
  type        = string
  default     = null
}

variable "gateway_smtp_user" {
  description = "MLGW_SMTP_USER (SES SMTP user name)."
  type        = string
  default     = null
}

variable "gateway_smtp_password" {
  description = "MLGW_SMTP_PASSWORD (SES SMTP password); kept in Secrets Manager. Set it with TF_VAR_gateway_smtp_password, not in a file."
  type        = string
  default     = null
  sensitive   = true
}

variable "gateway_notify_emails" {
  description = "MLGW_NOTIFY_EMAILS: who gets every job's email from the gateway (needs gateway_smtp_url)."
  type        = list(string)
  default     = []
}

variable "gateway_db_instance_class" {
  description = "RDS instance class of the gateway's PostgreSQL."
  type        = string
  default     = "db.t4g.small"
}

variable "gateway_db_multi_az" {
  description = "A Multi-AZ standby for the gateway's database (about doubles its cost)."
  type        = bool
  default     = true
}

variable "gateway_db_deletion_protection" {
  description = "Deletion protection of the gateway's database (set false and apply before destroying)."
  type        = bool
  default     = true
}

variable "gateway_sns_event_topic_arns" {
  description = "SNS topics whose messages are delivered to the gateway's /events/sns (MLGW_SNS_TOPIC_ARNS)."
  type        = list(string)
  default     = []
}

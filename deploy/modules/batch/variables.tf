variable "name" {
  description = "Prefix of the resource names (the project name)."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets the instances start in (the vpc module's public subnets)."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the instances (the vpc module's batch_security_group_id)."
  type        = string
}

variable "container_image" {
  description = "Image of both job definitions (an ECR URI of ml-python or ml-python-slim)."
  type        = string
}

variable "input_bucket_arn" {
  description = "ARN of the input bucket (jobs read it)."
  type        = string
}

variable "output_bucket_arn" {
  description = "ARN of the output bucket (jobs write it)."
  type        = string
}

variable "models_bucket_arn" {
  description = "ARN of the models bucket (jobs read it)."
  type        = string
}

variable "bucket_kms_key_arn" {
  description = "Customer managed KMS key of the buckets, if any (jobs are allowed to use it)."
  type        = string
  default     = null
}

variable "efs_file_system_id" {
  description = "The model cache's file system."
  type        = string
}

variable "efs_file_system_arn" {
  description = "ARN of the model cache's file system."
  type        = string
}

variable "efs_access_point_id" {
  description = "The model cache's /models access point."
  type        = string
}

variable "efs_access_point_arn" {
  description = "ARN of the /models access point."
  type        = string
}

variable "gpu_instance_types" {
  description = "Instance types (or families) of the GPU compute environment."
  type        = list(string)
  default     = ["g4dn", "g5"]
}

variable "cpu_instance_types" {
  description = "Instance types (or families) of the CPU compute environment."
  type        = list(string)
  default     = ["t3", "m5"]
}

variable "gpu_ami_image_type" {
  description = "Batch's ECS-optimised AMI of the GPU environment (the NVIDIA one)."
  type        = string
  default     = "ECS_AL2023_NVIDIA"
}

variable "cpu_ami_image_type" {
  description = "Batch's ECS-optimised AMI of the CPU environment."
  type        = string
  default     = "ECS_AL2023"
}

variable "gpu_root_volume_size" {
  description = "Root volume of GPU instances in GiB (the CUDA image is large)."
  type        = number
  default     = 100
}

variable "cpu_root_volume_size" {
  description = "Root volume of CPU instances in GiB."
  type        = number
  default     = 50
}

variable "gpu_max_vcpus" {
  description = "Most vCPUs the GPU environment scales to (keep within the account's G and VT quota)."
  type        = number
}

variable "cpu_max_vcpus" {
  description = "Most vCPUs the CPU environment scales to."
  type        = number
}

variable "gpu_use_spot_instances" {
  description = "GPU environment on spot (SPOT_PRICE_CAPACITY_OPTIMIZED) rather than on-demand (BEST_FIT_PROGRESSIVE)."
  type        = bool
}

variable "cpu_use_spot_instances" {
  description = "CPU environment on spot rather than on-demand."
  type        = bool
}

variable "gpu_job_vcpus" {
  description = "Default vCPUs of a GPU job."
  type        = number
}

variable "gpu_job_memory" {
  description = "Default memory of a GPU job, MiB."
  type        = number
}

variable "gpu_job_gpus" {
  description = "Default GPUs of a GPU job."
  type        = number
}

variable "cpu_job_vcpus" {
  description = "Default vCPUs of a CPU job."
  type        = number
}

variable "cpu_job_memory" {
  description = "Default memory of a CPU job, MiB."
  type        = number
}

variable "shared_memory_size" {
  description = "Size of /dev/shm in the job containers, MiB (PyTorch DataLoader workers use it)."
  type        = number
  default     = 2048

  validation {
    condition     = var.shared_memory_size >= 64
    error_message = "shared_memory_size must be at least 64 (MiB)."
  }
}

variable "job_attempts" {
  description = "Attempts of a job whose host went away (spot reclaim); any other failure is final."
  type        = number
  default     = 3

  validation {
    condition     = var.job_attempts >= 1 && var.job_attempts <= 10
    error_message = "job_attempts must be between 1 and 10."
  }
}

variable "job_timeout_seconds" {
  description = "Longest an attempt of a job may run before Batch stops it (a message's timeout_seconds overrides it)."
  type        = number
  default     = 86400

  validation {
    condition     = var.job_timeout_seconds >= 60
    error_message = "job_timeout_seconds must be at least 60 (Batch's minimum)."
  }
}

variable "runnable_capacity_timeout_seconds" {
  description = "How long a job may wait RUNNABLE for want of instance capacity (e.g. no GPU quota) before it is cancelled."
  type        = number
  default     = 14400

  validation {
    condition     = var.runnable_capacity_timeout_seconds >= 600 && var.runnable_capacity_timeout_seconds <= 86400
    error_message = "runnable_capacity_timeout_seconds must be between 600 and 86400."
  }
}

variable "runnable_misconfiguration_timeout_seconds" {
  description = "How long a job that can never fit the compute environment may wait RUNNABLE before it is cancelled."
  type        = number
  default     = 600

  validation {
    condition     = var.runnable_misconfiguration_timeout_seconds >= 600 && var.runnable_misconfiguration_timeout_seconds <= 86400
    error_message = "runnable_misconfiguration_timeout_seconds must be between 600 and 86400."
  }
}

variable "log_retention_days" {
  description = "Days to keep job logs."
  type        = number
  default     = 30
}

variable "log_kms_key_arn" {
  description = "Customer managed KMS key for the job log group; null: the service's own encryption."
  type        = string
  default     = null
}

variable "use_service_linked_role" {
  description = "Manage the compute environments with Batch's service-linked role (AWSServiceRoleForBatch, allows in-place infrastructure updates) instead of the service role made here."
  type        = bool
  default     = false
}

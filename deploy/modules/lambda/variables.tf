variable "name" {
  description = "Prefix of the resource names (the project name)."
  type        = string
}

variable "trigger_topic_arn" {
  description = "Topic the dispatcher is subscribed to."
  type        = string
}

variable "notifications_topic_arn" {
  description = "Topic the monitor publishes job summaries to."
  type        = string
}

variable "job_queue_arns" {
  description = "Batch job queue ARNs by compute type (gpu, cpu)."
  type        = map(string)

  validation {
    condition     = length(setsubtract(["gpu", "cpu"], keys(var.job_queue_arns))) == 0
    error_message = "job_queue_arns must have a gpu and a cpu entry."
  }
}

variable "job_definition_names" {
  description = "Batch job definition names by compute type (gpu, cpu)."
  type        = map(string)

  validation {
    condition     = length(setsubtract(["gpu", "cpu"], keys(var.job_definition_names))) == 0
    error_message = "job_definition_names must have a gpu and a cpu entry."
  }
}

variable "input_bucket" {
  description = "Input bucket name (the jobs' ML_INPUT_BUCKET)."
  type        = string
}

variable "output_bucket" {
  description = "Output bucket name (the jobs' ML_OUTPUT_BUCKET)."
  type        = string
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

variable "enable_monitor" {
  description = "Deploy the job monitor (Batch job state changes to the notifications topic). Leave off where the gateway receives the events and notifies."
  type        = bool
  default     = false
}

variable "monitor_statuses" {
  description = "Job statuses the monitor reports."
  type        = list(string)
  default     = ["SUCCEEDED", "FAILED"]

  validation {
    condition     = length(var.monitor_statuses) > 0 && alltrue([for s in var.monitor_statuses : contains(["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"], s)])
    error_message = "monitor_statuses must list Batch job statuses."
  }
}

variable "runtime" {
  description = "Python runtime of the functions."
  type        = string
  default     = "python3.12"

  validation {
    condition     = can(regex("^python3\\.(1[1-9])$", var.runtime))
    error_message = "runtime must be python3.11 or later."
  }
}

variable "dispatcher_concurrency" {
  description = "Concurrent dispatcher invocations reserved and at most (-1: unreserved; an account keeps at least 10 unreserved, and new accounts may have only 10 in all)."
  type        = number
  default     = -1
}

variable "monitor_concurrency" {
  description = "Concurrent monitor invocations reserved and at most (-1: unreserved)."
  type        = number
  default     = -1
}

variable "log_retention_days" {
  description = "Days to keep the functions' logs."
  type        = number
  default     = 30
}

variable "log_kms_key_arn" {
  description = "Customer managed KMS key of the log groups; null: the service's own encryption."
  type        = string
  default     = null
}

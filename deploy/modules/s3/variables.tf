variable "name" {
  description = "Prefix of the bucket names (the project name); the account ID is appended for uniqueness."
  type        = string
}

variable "output_expiration_days" {
  description = "Days after which job outputs are deleted from the output bucket (0: kept forever)."
  type        = number
  default     = 90

  validation {
    condition     = var.output_expiration_days >= 0 && floor(var.output_expiration_days) == var.output_expiration_days
    error_message = "output_expiration_days must be a whole number, 0 or more."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days an overwritten or deleted object's old version is kept in the versioned buckets (input, models)."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for the buckets; null uses the AWS managed aws/s3 key."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Let terraform destroy delete non-empty buckets (their objects are lost)."
  type        = bool
  default     = false
}

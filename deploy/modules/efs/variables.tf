variable "name" {
  description = "Prefix of the resource names (the project name)."
  type        = string
}

variable "subnets" {
  description = "Subnets to put a mount target in, by a key known at plan time (the vpc module's public_subnets)."
  type        = map(string)
}

variable "security_group_id" {
  description = "Security group of the mount targets (the vpc module's efs_security_group_id)."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer managed KMS key; null uses the AWS managed aws/elasticfilesystem key."
  type        = string
  default     = null
}

variable "posix_uid" {
  description = "POSIX user ID every client of the access point acts as (owner of /models); 10001 is the job user of the images in images/."
  type        = number
  default     = 10001

  validation {
    condition     = var.posix_uid >= 0 && floor(var.posix_uid) == var.posix_uid
    error_message = "posix_uid must be a whole number, 0 or more."
  }
}

variable "posix_gid" {
  description = "POSIX group ID every client of the access point acts as (10001 in the images)."
  type        = number
  default     = 10001

  validation {
    condition     = var.posix_gid >= 0 && floor(var.posix_gid) == var.posix_gid
    error_message = "posix_gid must be a whole number, 0 or more."
  }
}

variable "transition_to_ia" {
  description = "When unread model files move to the Infrequent Access class."
  type        = string
  default     = "AFTER_30_DAYS"

  validation {
    condition     = contains(["AFTER_1_DAY", "AFTER_7_DAYS", "AFTER_14_DAYS", "AFTER_30_DAYS", "AFTER_60_DAYS", "AFTER_90_DAYS", "AFTER_180_DAYS", "AFTER_270_DAYS", "AFTER_365_DAYS"], var.transition_to_ia)
    error_message = "transition_to_ia must be one of EFS's AFTER_N_DAYS values."
  }
}

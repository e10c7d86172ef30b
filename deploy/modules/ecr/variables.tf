variable "name" {
  description = "Prefix of the repository names (the project name): <name>-<image>, as images/build-and-push.sh pushes."
  type        = string
}

variable "repositories" {
  description = "Images to make a repository for."
  type        = list(string)
  default     = ["ml-python-slim", "ml-python", "ml-gateway"]

  validation {
    condition     = alltrue([for r in var.repositories : can(regex("^[a-z0-9][a-z0-9._-]*$", r))])
    error_message = "repositories must be lower-case ECR repository names."
  }
}

variable "mutable_tags" {
  description = "Tag patterns that may be pushed again (all other tags are immutable)."
  type        = list(string)
  default     = ["latest"]
}

variable "untagged_expiration_days" {
  description = "Days after which untagged images are deleted."
  type        = number
  default     = 7

  validation {
    condition     = var.untagged_expiration_days >= 1
    error_message = "untagged_expiration_days must be at least 1."
  }
}

variable "keep_tagged_images" {
  description = "Tagged images kept per repository (older ones are deleted)."
  type        = number
  default     = 30

  validation {
    condition     = var.keep_tagged_images >= 1
    error_message = "keep_tagged_images must be at least 1."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key; null uses the AWS managed aws/ecr key."
  type        = string
  default     = null
}

variable "force_delete" {
  description = "Let terraform destroy delete repositories that still hold images."
  type        = bool
  default     = false
}

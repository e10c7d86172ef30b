variable "name" {
  description = "Prefix of the topic names (the project name)."
  type        = string
}

variable "notification_emails" {
  description = "Email addresses subscribed to the notifications topic."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.notification_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "notification_emails must hold email addresses."
  }
}

variable "kms_master_key_id" {
  description = "KMS key (ID, ARN or alias) encrypting both topics; the AWS managed alias/aws/sns by default."
  type        = string
  default     = "alias/aws/sns"
}

variable "publisher_service_principals" {
  description = "AWS services (besides the account's own principals) allowed to publish, per topic: trigger, notifications. A customer managed kms_master_key_id is needed for service publishers."
  type        = object({ trigger = list(string), notifications = list(string) })
  default     = { trigger = [], notifications = [] }
}

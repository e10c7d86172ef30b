variable "name" {
  description = "Prefix of every resource name (the project name)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2 to 31 of a-z, 0-9 and -, starting with a letter."
  }
}

variable "cidr_block" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.cidr_block)) && tonumber(split("/", var.cidr_block)[1]) <= 24
    error_message = "cidr_block must be an IPv4 CIDR block of /24 or larger."
  }
}

variable "subnet_newbits" {
  description = "Bits added to the VPC prefix for each public subnet (8: a /24 per subnet of a /16)."
  type        = number
  default     = 8

  validation {
    condition     = var.subnet_newbits >= 2 && var.subnet_newbits <= 8
    error_message = "subnet_newbits must be between 2 and 8."
  }
}

variable "az_count" {
  description = "Availability zones to spread the public subnets over (at least 2)."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 6 && floor(var.az_count) == var.az_count
    error_message = "az_count must be a whole number from 2 to 6."
  }
}

variable "efs_client_security_group_ids" {
  description = "Security groups besides Batch's allowed to reach EFS on 2049, by a static name (e.g. { gateway = sg-… })."
  type        = map(string)
  default     = {}
}

variable "flow_logs_retention_days" {
  description = "Days to keep VPC flow logs of rejected traffic (0: no flow logs)."
  type        = number
  default     = 0

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_logs_retention_days)
    error_message = "flow_logs_retention_days must be 0 or a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, …)."
  }
}

output "file_system_id" {
  description = "ID of the EFS file system."
  value       = aws_efs_file_system.this.id
}

output "file_system_arn" {
  description = "ARN of the EFS file system."
  value       = aws_efs_file_system.this.arn
}

output "access_point_id" {
  description = "ID of the /models access point."
  value       = aws_efs_access_point.models.id
}

output "access_point_arn" {
  description = "ARN of the /models access point (the condition of the clients' IAM grants)."
  value       = aws_efs_access_point.models.arn
}

output "mount_target_ids" {
  description = "Mount target IDs by subnet key."
  value       = { for k, m in aws_efs_mount_target.this : k => m.id }
}

output "dns_name" {
  description = "DNS name of the file system."
  value       = aws_efs_file_system.this.dns_name
}

output "repository_urls" {
  description = "Repository URLs by image name (push to <url>:<tag>)."
  value       = { for k, r in aws_ecr_repository.this : k => r.repository_url }
}

output "repository_arns" {
  description = "Repository ARNs by image name."
  value       = { for k, r in aws_ecr_repository.this : k => r.arn }
}

output "registry_id" {
  description = "Registry (account) ID of the repositories."
  value       = one(distinct([for r in aws_ecr_repository.this : r.registry_id]))
}

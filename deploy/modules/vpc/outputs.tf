output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "CIDR block of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "IDs of the public subnets, in AZ order."
  value       = [for k in sort(keys(aws_subnet.public)) : aws_subnet.public[k].id]
}

output "public_subnets" {
  description = "Public subnet IDs by a key known at plan time (\"0\", \"1\", …), for for_each."
  value       = { for k, s in aws_subnet.public : k => s.id }
}

output "availability_zones" {
  description = "Availability zones of the public subnets, in the same order."
  value       = [for k in sort(keys(local.subnets)) : local.subnets[k].az]
}

output "public_route_table_id" {
  description = "Route table of the public subnets."
  value       = aws_route_table.public.id
}

output "internet_gateway_id" {
  description = "ID of the internet gateway."
  value       = aws_internet_gateway.this.id
}

output "s3_endpoint_id" {
  description = "ID of the S3 gateway endpoint."
  value       = aws_vpc_endpoint.s3.id
}

output "batch_security_group_id" {
  description = "Security group of the Batch instances (outbound only)."
  value       = aws_security_group.batch.id
}

output "efs_security_group_id" {
  description = "Security group of the EFS mount targets; add NFS clients through efs_client_security_group_ids."
  value       = aws_security_group.efs.id
}

output "bucket_names" {
  description = "Bucket names by role: input, output, models."
  value       = { for k, b in aws_s3_bucket.this : k => b.id }
}

output "bucket_arns" {
  description = "Bucket ARNs by role: input, output, models."
  value       = { for k, b in aws_s3_bucket.this : k => b.arn }
}

output "input_bucket" {
  description = "Input bucket (scripts and data): the jobs' ML_INPUT_BUCKET."
  value       = aws_s3_bucket.this["input"].id
}

output "output_bucket" {
  description = "Output bucket: the jobs' ML_OUTPUT_BUCKET."
  value       = aws_s3_bucket.this["output"].id
}

output "models_bucket" {
  description = "Models bucket."
  value       = aws_s3_bucket.this["models"].id
}

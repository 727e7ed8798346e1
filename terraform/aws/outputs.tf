output "buckets" {
  description = "Bucket of each layer."
  value = {
    raw      = aws_s3_bucket.raw.bucket
    standard = aws_s3_bucket.standard.bucket
    archive  = aws_s3_bucket.archive.bucket
  }
}

output "lake_urls" {
  description = "Lake URL of each layer, as the etl commands take them."
  value       = local.lake_url
}

output "task_roles" {
  description = "Task role ARN of each stage."
  value       = { for stage, role in aws_iam_role.task : stage => role.arn }
}

output "task_definitions" {
  description = "Task definition family of each stage (aws ecs run-task --task-definition FAMILY ...)."
  value       = { for stage, td in aws_ecs_task_definition.stage : stage => td.family }
}

output "cluster" {
  description = "ECS cluster of the tasks."
  value       = aws_ecs_cluster.etl.name
}

output "security_group_id" {
  description = "Security group for hand-started tasks."
  value       = aws_security_group.tasks.id
}

output "image_repository" {
  description = "ECR repository URL to push the etl image to."
  value       = aws_ecr_repository.etl.repository_url
}

output "private_key_secret_arn" {
  description = "Secrets Manager secret that must hold the private key (put the value by hand)."
  value       = aws_secretsmanager_secret.private_key.arn
}

output "log_group" {
  description = "CloudWatch log group of the tasks."
  value       = aws_cloudwatch_log_group.etl.name
}

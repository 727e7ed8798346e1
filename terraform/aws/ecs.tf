# Image repository: tags are immutable, images are scanned on push, old images expire.
resource "aws_ecr_repository" "etl" {
  name                 = "${var.name_prefix}/etl"
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_destroy

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.lake.arn
  }
}

resource "aws_ecr_lifecycle_policy" "etl" {
  repository = aws_ecr_repository.etl.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the newest 30 images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 30 }
      action       = { type = "expire" }
    }]
  })
}

resource "aws_cloudwatch_log_group" "etl" {
  name              = "/etl/${var.name_prefix}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.lake.arn
}

# The private key opens every raw object. Terraform creates the secret but never its value (which
# would then sit in the state): put the value by hand, see ../README.md.
resource "aws_secretsmanager_secret" "private_key" {
  name                    = "${var.name_prefix}/etl-private-key"
  description             = "etl private key (PEM, PKCS#8); only the standard task reads it"
  kms_key_id              = aws_kms_key.lake.arn
  recovery_window_in_days = 30

  #checkov:skip=CKV2_AWS_57:An RSA key pair is rotated by re-keying (new pair, old private key kept for old objects), not by a Lambda.
}

resource "aws_ecs_cluster" "etl" {
  name = var.name_prefix

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_security_group" "tasks" {
  name        = "${var.name_prefix}-tasks"
  description = "etl Fargate tasks: no inbound; outbound HTTPS (AWS APIs) and Kafka only"
  vpc_id      = var.vpc_id

  #checkov:skip=CKV2_AWS_5:Attached to the tasks that EventBridge Scheduler starts (aws_scheduler_schedule.stage network_configuration), which checkov does not follow.

  egress {
    description = "HTTPS to S3, ECR, Secrets Manager, CloudWatch Logs (through NAT or VPC endpoints)"
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = ["0.0.0.0/0"]
  }

  egress {
    description = "Kafka brokers"
    protocol    = "tcp"
    from_port   = var.kafka_ports.from
    to_port     = var.kafka_ports.to
    cidr_blocks = var.kafka_cidr_blocks
  }
}

locals {
  # Fargate cannot mount a secret as a file, so the key arrives in an environment variable and a
  # shell writes it to the task's private /tmp (mode 0600) before exec'ing etl.
  key_env = {
    raw      = { var = "ETL_PUBLIC_KEY_PEM", path = local.public_key_path }
    standard = { var = "ETL_PRIVATE_KEY_PEM", path = local.private_key_path }
  }
  shell_args = {
    for stage in local.stages : stage => join(" ", [for a in local.job_args[stage] : "'${replace(a, "'", "'\\''")}'"])
  }
  container_command = {
    for stage in local.stages : stage => (
      contains(keys(local.key_env), stage)
      ? "umask 077 && printf '%s\\n' \"$${${local.key_env[stage].var}}\" > ${local.key_env[stage].path} && unset ${local.key_env[stage].var} && exec etl ${local.shell_args[stage]}"
      : "exec etl ${local.shell_args[stage]}"
    )
  }
}

resource "aws_ecs_task_definition" "stage" {
  for_each = toset(local.stages)

  family                   = "${var.name_prefix}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_sizes[each.key].cpu
  memory                   = var.task_sizes[each.key].memory
  task_role_arn            = aws_iam_role.task[each.key].arn
  execution_role_arn       = aws_iam_role.execution[each.key].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = "etl"
    image                  = "${aws_ecr_repository.etl.repository_url}:${var.image_tag}"
    essential              = true
    user                   = "10001:10001"
    readonlyRootFilesystem = true
    entryPoint             = ["/bin/sh", "-c"]
    command                = [local.container_command[each.key]]
    environment = concat(
      [
        { name = "AWS_REGION", value = var.region },
        { name = "AWS_VIRTUAL_HOSTED_STYLE_REQUEST", value = "true" },
        { name = "ETL_LOG", value = "info" },
      ],
      each.key == "raw" ? [{ name = "ETL_PUBLIC_KEY_PEM", value = trimspace(var.public_key_pem) }] : [],
    )
    secrets     = each.key == "standard" ? [{ name = "ETL_PRIVATE_KEY_PEM", valueFrom = aws_secretsmanager_secret.private_key.arn }] : []
    mountPoints = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.etl.name
        awslogs-region        = var.region
        awslogs-stream-prefix = each.key
      }
    }
  }])
}

resource "aws_scheduler_schedule_group" "etl" {
  name = var.name_prefix
}

# EventBridge Scheduler starts one Fargate task per scheduled stage (raw_task_count for raw).
resource "aws_scheduler_schedule" "stage" {
  for_each = local.scheduled

  name                         = "${var.name_prefix}-${each.key}"
  description                  = "Starts the etl ${each.key} task."
  group_name                   = aws_scheduler_schedule_group.etl.name
  schedule_expression          = each.value
  schedule_expression_timezone = var.time_zone

  #checkov:skip=CKV_AWS_297:The schedule carries no input, only ARNs of the cluster, task definition and roles; the AWS-owned key is enough.

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_ecs_cluster.etl.arn
    role_arn = aws_iam_role.scheduler.arn

    ecs_parameters {
      task_definition_arn = aws_ecs_task_definition.stage[each.key].arn
      task_count          = each.key == "raw" ? var.raw_task_count : 1
      launch_type         = "FARGATE"
      platform_version    = "LATEST"

      network_configuration {
        subnets          = var.subnet_ids
        security_groups  = [aws_security_group.tasks.id]
        assign_public_ip = false
      }
    }

    # A failed start is retried by the next scheduled run, which resumes from the lake's checkpoint.
    retry_policy {
      maximum_retry_attempts       = 0
      maximum_event_age_in_seconds = 3600
    }
  }
}

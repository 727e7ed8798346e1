# Identities. Each stage has a task role (what the etl process may do) and an execution role
# (what ECS may do to start it: pull the image, write logs, and for standard only, read the
# private-key secret). Every statement names its buckets, key, secret, repository or log group;
# no action wildcards are allowed anywhere.
#
#   stage     raw bucket              standard bucket               archive bucket                private key
#   raw       list, get, put          -                             -                             -
#   standard  list, get               list, get, put, delete        -                             execution role only
#   reduce    -                       list, get                     list, get, put, delete        -
#   query     -                       list, get                     list, get                     -
#
# raw has no s3:DeleteObject: its claims and sealed objects are created with If-None-Match and
# never removed by it. standard and reduce publish tables through manifests (copy staged files,
# delete replaced ones), so they may delete in their own output bucket only.

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${var.region}:${local.account_id}:*"]
    }
  }
}

resource "aws_iam_role" "task" {
  for_each = toset(local.stages)

  name               = "${var.name_prefix}-${each.key}-task"
  description        = "etl ${each.key}: what the process may do"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role" "execution" {
  for_each = toset(local.stages)

  name               = "${var.name_prefix}-${each.key}-execution"
  description        = "etl ${each.key}: what ECS may do to start the task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

locals {
  # S3 encrypts and decrypts with the lake key on the stage's behalf.
  kms_via_s3 = "s3.${var.region}.amazonaws.com"
}

data "aws_iam_policy_document" "raw" {
  statement {
    sid       = "ListRawBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.raw.arn]
  }
  statement {
    sid       = "CreateAndReadRawObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.raw.arn}/*"]
  }
  statement {
    sid       = "UseLakeKeyThroughS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.lake.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.kms_via_s3]
    }
  }
}

data "aws_iam_policy_document" "standard" {
  statement {
    sid       = "ListRawAndStandardBuckets"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.raw.arn, aws_s3_bucket.standard.arn]
  }
  statement {
    sid       = "ReadRawObjects"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.raw.arn}/*"]
  }
  statement {
    sid       = "PublishStandardTables"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.standard.arn}/*"]
  }
  statement {
    sid       = "UseLakeKeyThroughS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.lake.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.kms_via_s3]
    }
  }
}

data "aws_iam_policy_document" "reduce" {
  statement {
    sid       = "ListStandardAndArchiveBuckets"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.standard.arn, aws_s3_bucket.archive.arn]
  }
  statement {
    sid       = "ReadStandardObjects"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.standard.arn}/*"]
  }
  statement {
    sid       = "PublishArchiveTables"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.archive.arn}/*"]
  }
  statement {
    sid       = "UseLakeKeyThroughS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.lake.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.kms_via_s3]
    }
  }
}

data "aws_iam_policy_document" "query" {
  statement {
    sid       = "ListStandardAndArchiveBuckets"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.standard.arn, aws_s3_bucket.archive.arn]
  }
  statement {
    sid       = "ReadStandardAndArchiveObjects"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.standard.arn}/*", "${aws_s3_bucket.archive.arn}/*"]
  }
  statement {
    sid       = "DecryptWithLakeKeyThroughS3"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.lake.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.kms_via_s3]
    }
  }
}

locals {
  task_policies = {
    raw      = data.aws_iam_policy_document.raw.json
    standard = data.aws_iam_policy_document.standard.json
    reduce   = data.aws_iam_policy_document.reduce.json
    query    = data.aws_iam_policy_document.query.json
  }
}

resource "aws_iam_role_policy" "task" {
  for_each = local.task_policies

  name   = "lake-access"
  role   = aws_iam_role.task[each.key].id
  policy = each.value
}

# Every execution role: pull the etl image, write to the etl log group.
data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions
  }
  statement {
    sid       = "PullEtlImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [aws_ecr_repository.etl.arn]
  }
  statement {
    sid       = "WriteTaskLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.etl.arn}:*"]
  }
}

resource "aws_iam_role_policy" "execution" {
  for_each = toset(local.stages)

  name   = "start-task"
  role   = aws_iam_role.execution[each.key].id
  policy = data.aws_iam_policy_document.execution.json
}

# Only the standard stage's execution role may read the private key (ECS injects it into the
# standard container; no other task, and no task role, can fetch it).
data "aws_iam_policy_document" "standard_private_key" {
  statement {
    sid       = "ReadPrivateKeySecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.private_key.arn]
  }
  statement {
    sid       = "DecryptPrivateKeySecret"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.lake.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "standard_private_key" {
  name   = "read-private-key"
  role   = aws_iam_role.execution["standard"].id
  policy = data.aws_iam_policy_document.standard_private_key.json
}

# EventBridge Scheduler: may run the etl task definitions on the etl cluster and pass their two
# roles to ECS, nothing else.
data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name_prefix}-scheduler"
  description        = "EventBridge Scheduler: starts the etl ECS tasks"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "RunEtlTasks"
    actions   = ["ecs:RunTask"]
    resources = [for stage in keys(local.scheduled) : "${aws_ecs_task_definition.stage[stage].arn_without_revision}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.etl.arn]
    }
  }
  statement {
    sid     = "PassEtlTaskRoles"
    actions = ["iam:PassRole"]
    resources = concat(
      [for stage in keys(local.scheduled) : aws_iam_role.task[stage].arn],
      [for stage in keys(local.scheduled) : aws_iam_role.execution[stage].arn],
    )
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "scheduler" {
  count = length(local.scheduled) > 0 ? 1 : 0

  name   = "run-etl-tasks"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

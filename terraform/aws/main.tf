data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  stages = ["raw", "standard", "reduce", "query"]

  tags = merge(var.tags, {
    app        = "etl"
    managed-by = "terraform"
  })

  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  lake_url = {
    raw      = "s3://${aws_s3_bucket.raw.bucket}"
    standard = "s3://${aws_s3_bucket.standard.bucket}"
    archive  = "s3://${aws_s3_bucket.archive.bucket}"
  }

  # Command line of each stage after `etl`. The key files are written to the task's private /tmp
  # from the environment (see ecs.tf).
  public_key_path  = "/tmp/etl-public.pem"
  private_key_path = "/tmp/etl-private.pem"
  default_args = {
    raw      = concat(["raw", "--brokers", var.brokers, "--topic", var.topic, "--lake", local.lake_url.raw, "--public-key", local.public_key_path], var.raw_extra_args)
    standard = ["standard", "--topic", var.topic, "--raw-lake", local.lake_url.raw, "--standard-lake", local.lake_url.standard, "--private-key", local.private_key_path]
    reduce   = ["reduce", "--standard-lake", local.lake_url.standard, "--archive-lake", local.lake_url.archive]
    query    = ["query", "--standard-lake", local.lake_url.standard, "--archive-lake", local.lake_url.archive, "--name", "quality_summary"]
  }
  job_args = merge(local.default_args, var.stage_args)

  scheduled = { for stage, expr in var.schedules : stage => expr if expr != "" }
}

# One customer-managed key for the lake buckets, the private-key secret and the task logs.
resource "aws_kms_key" "lake" {
  description             = "etl ${var.name_prefix}: lake buckets, private-key secret, logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "lake" {
  name          = "alias/${var.name_prefix}-lake"
  target_key_id = aws_kms_key.lake.key_id
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:Key policy: the resource "*" is this key alone, and the principal is this account (AWS's default key policy pattern).
  #checkov:skip=CKV_AWS_111:Key policy: the resource "*" is this key alone, and the principal is this account (AWS's default key policy pattern).
  #checkov:skip=CKV_AWS_356:Key policy: the resource "*" is this key alone, and the principal is this account (AWS's default key policy pattern).

  # The account administers the key and may grant its use through IAM policies (iam.tf grants
  # each stage only what it needs, through S3 / Secrets Manager).
  statement {
    sid       = "AccountAdministersAndDelegatesThroughIam"
    effect    = "Allow"
    resources = ["*"] # in a key policy "*" is this key
    actions = [
      "kms:CancelKeyDeletion", "kms:Create*", "kms:Decrypt", "kms:Delete*", "kms:Describe*",
      "kms:Disable*", "kms:Enable*", "kms:Encrypt", "kms:GenerateDataKey*", "kms:Get*",
      "kms:List*", "kms:Put*", "kms:ReEncrypt*", "kms:Revoke*", "kms:ScheduleKeyDeletion",
      "kms:TagResource", "kms:UntagResource", "kms:Update*",
    ]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncryptsTheTaskLogs"
    effect    = "Allow"
    resources = ["*"]
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:/etl/${var.name_prefix}"]
    }
  }
}

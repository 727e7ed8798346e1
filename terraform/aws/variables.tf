variable "region" {
  description = "AWS region of everything, e.g. eu-west-1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like eu-west-1 or us-gov-west-1."
  }
}

variable "name_prefix" {
  description = "Prefix of every name. Bucket names are global, so make it unique (e.g. acme-etl-prod): buckets are <prefix>-raw, <prefix>-standard, <prefix>-archive."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}[a-z0-9]$", var.name_prefix)) && !can(regex("--", var.name_prefix)) && !startswith(var.name_prefix, "xn-") && !startswith(var.name_prefix, "sthree-")
    error_message = "name_prefix must be 4-32 characters of lowercase letters, digits and single hyphens, start with a letter, end with a letter or digit."
  }
}

variable "tags" {
  description = "Extra tags for every resource (app and managed-by are always set)."
  type        = map(string)
  default     = {}

  validation {
    condition     = length(var.tags) <= 40 && alltrue([for k, v in var.tags : length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")])
    error_message = "At most 40 extra tags, keys up to 128 and values up to 256 characters, no aws: prefix."
  }
}

variable "force_destroy" {
  description = "Let terraform destroy non-empty buckets and the image repository. Keep false outside throwaway test accounts."
  type        = bool
  default     = false
}

variable "noncurrent_version_days" {
  description = "Days a noncurrent object version (replaced or deleted) is kept before it expires (1-365). With versioning this is the soft-delete window."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_days >= 1 && var.noncurrent_version_days <= 365 && floor(var.noncurrent_version_days) == var.noncurrent_version_days
    error_message = "noncurrent_version_days must be a whole number from 1 to 365."
  }
}

variable "infrequent_access_after_days" {
  description = "Age in days after which raw objects and archive Parquet move to STANDARD_IA (30-3650; S3 requires at least 30)."
  type        = number
  default     = 30

  validation {
    condition     = var.infrequent_access_after_days >= 30 && var.infrequent_access_after_days <= 3650 && floor(var.infrequent_access_after_days) == var.infrequent_access_after_days
    error_message = "infrequent_access_after_days must be a whole number from 30 to 3650."
  }
}

variable "glacier_after_days" {
  description = "Age in days after which raw objects and archive Parquet move to glacier_storage_class (60-36500, and at least infrequent_access_after_days + 30)."
  type        = number
  default     = 180

  validation {
    condition     = var.glacier_after_days >= 60 && var.glacier_after_days <= 36500 && floor(var.glacier_after_days) == var.glacier_after_days
    error_message = "glacier_after_days must be a whole number from 60 to 36500."
  }
}

variable "glacier_storage_class" {
  description = "Coldest class of raw and archive objects. GLACIER_IR (default) stays readable by GetObject; GLACIER and DEEP_ARCHIVE need a restore before etl verify/standard or a query can read an object."
  type        = string
  default     = "GLACIER_IR"

  validation {
    condition     = contains(["GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"], var.glacier_storage_class)
    error_message = "glacier_storage_class must be GLACIER_IR, GLACIER or DEEP_ARCHIVE."
  }
}

variable "raw_object_lock_days" {
  description = "Object Lock (GOVERNANCE) retention of raw objects in days; 0 = no Object Lock. Changing it from 0 replaces the raw bucket, so decide before the first apply."
  type        = number
  default     = 0

  validation {
    condition     = var.raw_object_lock_days >= 0 && var.raw_object_lock_days <= 3650 && floor(var.raw_object_lock_days) == var.raw_object_lock_days
    error_message = "raw_object_lock_days must be a whole number from 0 to 3650."
  }
}

variable "image_tag" {
  description = "Tag of the etl image in the ECR repository this configuration creates (tags are immutable), e.g. 0.1.0."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$", var.image_tag)) && var.image_tag != "latest"
    error_message = "image_tag must be a Docker tag other than latest."
  }
}

variable "brokers" {
  description = "Kafka bootstrap servers, host:port[,host:port...], reachable from subnet_ids."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9.-]+:[0-9]{1,5}(,[A-Za-z0-9.-]+:[0-9]{1,5})*$", var.brokers))
    error_message = "brokers must be a comma-separated list of host:port without spaces."
  }
}

variable "topic" {
  description = "Kafka topic landed by the raw job (and the table name used by standard)."
  type        = string
  default     = "breadcrumbs"

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,249}$", var.topic)) && var.topic != "." && var.topic != ".."
    error_message = "topic must be a valid Kafka topic name: 1-249 characters of letters, digits, '.', '_' and '-'."
  }
}

variable "public_key_pem" {
  description = "RSA public key (PEM, SPKI) that raw objects are sealed for: the contents of etl-public.pem from `etl keys generate`. Not secret."
  type        = string

  validation {
    condition     = startswith(trimspace(var.public_key_pem), "-----BEGIN PUBLIC KEY-----") && endswith(trimspace(var.public_key_pem), "-----END PUBLIC KEY-----")
    error_message = "public_key_pem must be a PEM public key (-----BEGIN PUBLIC KEY----- ... -----END PUBLIC KEY-----), never the private key."
  }
}

variable "schedules" {
  description = "EventBridge Scheduler expression per stage (cron(...) with 6 fields, or rate(...)) in time_zone; an empty string means no schedule (run the task by hand)."
  type        = map(string)
  default = {
    raw      = "cron(*/15 * * * ? *)"
    standard = "cron(5 * * * ? *)"
    reduce   = "cron(30 3 * * ? *)"
    query    = ""
  }

  validation {
    condition     = alltrue([for k in keys(var.schedules) : contains(["raw", "standard", "reduce", "query"], k)])
    error_message = "schedules keys must be stage names: raw, standard, reduce, query."
  }

  validation {
    condition     = alltrue([for v in values(var.schedules) : v == "" || can(regex("^cron\\([^ ]+( [^ ]+){5}\\)$", v)) || can(regex("^rate\\([0-9]+ (minute|minutes|hour|hours|day|days)\\)$", v))])
    error_message = "Each schedule must be empty, cron(m h dom mon dow year) or rate(N unit)."
  }
}

variable "time_zone" {
  description = "Time zone of the cron expressions (IANA name)."
  type        = string
  default     = "Etc/UTC"

  validation {
    condition     = can(regex("^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$", var.time_zone))
    error_message = "time_zone must be an IANA time zone name such as Etc/UTC or Europe/Berlin."
  }
}

variable "raw_task_count" {
  description = "Tasks started per scheduled raw run. Concurrent raw runs are safe by design (create-only claims)."
  type        = number
  default     = 1

  validation {
    condition     = var.raw_task_count >= 1 && var.raw_task_count <= 10 && floor(var.raw_task_count) == var.raw_task_count
    error_message = "raw_task_count must be a whole number from 1 to 10."
  }
}

variable "task_sizes" {
  description = "Fargate CPU units and memory (MiB) of each stage's task."
  type        = map(object({ cpu = number, memory = number }))
  default = {
    raw      = { cpu = 1024, memory = 2048 }
    standard = { cpu = 2048, memory = 4096 }
    reduce   = { cpu = 2048, memory = 4096 }
    query    = { cpu = 2048, memory = 4096 }
  }

  validation {
    condition     = alltrue([for k in ["raw", "standard", "reduce", "query"] : contains(keys(var.task_sizes), k)])
    error_message = "task_sizes needs an entry for each of raw, standard, reduce and query."
  }
}

variable "stage_args" {
  description = "Replaces the default command line (after etl) of the named stages."
  type        = map(list(string))
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.stage_args) : contains(["raw", "standard", "reduce", "query"], k)])
    error_message = "stage_args keys must be stage names: raw, standard, reduce, query."
  }
}

variable "raw_extra_args" {
  description = "Extra flags for etl raw, e.g. [\"--max-records\", \"5000000\"]."
  type        = list(string)
  default     = []
}

variable "vpc_id" {
  description = "VPC of the Fargate tasks."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "subnet_ids" {
  description = "Private subnets of the Fargate tasks (they need a route to the brokers and to S3, ECR, Secrets Manager and CloudWatch Logs: NAT or VPC endpoints)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0 && alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "subnet_ids must be a non-empty list of subnet ids (subnet-...)."
  }
}

variable "kafka_cidr_blocks" {
  description = "CIDR blocks of the Kafka brokers (egress from the tasks on kafka_ports)."
  type        = list(string)

  validation {
    condition     = length(var.kafka_cidr_blocks) > 0 && alltrue([for c in var.kafka_cidr_blocks : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "kafka_cidr_blocks must be a non-empty list of CIDR blocks, not 0.0.0.0/0."
  }
}

variable "kafka_ports" {
  description = "TCP port range of the brokers."
  type        = object({ from = number, to = number })
  default     = { from = 9092, to = 9096 }

  validation {
    condition     = var.kafka_ports.from >= 1 && var.kafka_ports.to <= 65535 && var.kafka_ports.from <= var.kafka_ports.to
    error_message = "kafka_ports must be a range within 1-65535 with from <= to."
  }
}

variable "log_retention_days" {
  description = "Retention of the tasks' CloudWatch logs in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, ..., 365, 400, ..., 3653)."
  }
}

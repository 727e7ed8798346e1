variable "project_id" {
  description = "GCP project that holds the lake, the jobs and the secrets."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project id: 6-30 characters, lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of the Cloud Run jobs, the scheduler, Artifact Registry and (unless bucket_location is set) the buckets, e.g. europe-west1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must look like europe-west1 or us-central1."
  }
}

variable "bucket_location" {
  description = "Location of the lake buckets: a region, a dual-region (EUR4) or a multi-region (EU, US). Default: var.region."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_location == null || can(regex("^([A-Z0-9]+|[a-z]+-[a-z]+[0-9]+)$", coalesce(var.bucket_location, "x")))
    error_message = "bucket_location must be a region (europe-west1) or an upper-case dual/multi-region (EU, US, EUR4)."
  }
}

variable "name_prefix" {
  description = "Prefix of every name. Bucket names are global, so make it unique (e.g. acme-etl-prod): buckets are <prefix>-raw, <prefix>-standard, <prefix>-archive."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,20}[a-z0-9]$", var.name_prefix)) && !can(regex("--", var.name_prefix)) && !can(regex("goog", var.name_prefix))
    error_message = "name_prefix must be 4-22 characters of lowercase letters, digits and single hyphens, start with a letter, end with a letter or digit, and not contain \"goog\"."
  }
}

variable "labels" {
  description = "Extra labels for every resource that takes labels (app, layer and managed-by are always set)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "Label keys must start with a lowercase letter; keys and values may hold only lowercase letters, digits, _ and - (at most 63 characters)."
  }
}

variable "force_destroy" {
  description = "Let terraform destroy non-empty buckets. Keep false outside throwaway test projects: the raw layer is the only copy of data Kafka has already expired."
  type        = bool
  default     = false
}

variable "soft_delete_days" {
  description = "Days a deleted or overwritten object stays recoverable (GCS soft delete, 7-90)."
  type        = number
  default     = 30

  validation {
    condition     = var.soft_delete_days >= 7 && var.soft_delete_days <= 90 && floor(var.soft_delete_days) == var.soft_delete_days
    error_message = "soft_delete_days must be a whole number from 7 to 90."
  }
}

variable "noncurrent_version_days" {
  description = "Days a noncurrent object version (replaced or deleted) is kept before the lifecycle deletes it (1-365)."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_days >= 1 && var.noncurrent_version_days <= 365 && floor(var.noncurrent_version_days) == var.noncurrent_version_days
    error_message = "noncurrent_version_days must be a whole number from 1 to 365."
  }
}

variable "coldline_after_days" {
  description = "Age in days after which raw objects and archive Parquet move from NEARLINE to COLDLINE (30-3650; NEARLINE bills at least 30 days)."
  type        = number
  default     = 90

  validation {
    condition     = var.coldline_after_days >= 30 && var.coldline_after_days <= 3650 && floor(var.coldline_after_days) == var.coldline_after_days
    error_message = "coldline_after_days must be a whole number from 30 to 3650."
  }
}

variable "archive_after_days" {
  description = "Age in days after which raw objects and archive Parquet move to ARCHIVE (120-36500, and more than coldline_after_days + 90: COLDLINE bills at least 90 days)."
  type        = number
  default     = 365

  validation {
    condition     = var.archive_after_days >= 120 && var.archive_after_days <= 36500 && floor(var.archive_after_days) == var.archive_after_days
    error_message = "archive_after_days must be a whole number from 120 to 36500."
  }
}

variable "image" {
  description = "Container image of etl (built from the repository's Dockerfile), e.g. europe-west1-docker.pkg.dev/PROJECT/etl/etl:0.1.0. Pin a tag or a digest."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+|@sha256:[a-f0-9]{64})$", var.image)) && !can(regex(":latest$", var.image))
    error_message = "image must be a full image reference with a registry host and a tag (not :latest) or an @sha256: digest."
  }
}

variable "brokers" {
  description = "Kafka bootstrap servers, host:port[,host:port...]. The jobs reach them through vpc_network/vpc_subnetwork when the brokers are private."
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
  description = "RSA public key (PEM, SPKI) that raw objects are sealed for: the contents of etl-public.pem from `etl keys generate`. Not secret; stored as a Secret Manager version so it can be mounted as a file."
  type        = string

  validation {
    condition     = startswith(trimspace(var.public_key_pem), "-----BEGIN PUBLIC KEY-----") && endswith(trimspace(var.public_key_pem), "-----END PUBLIC KEY-----")
    error_message = "public_key_pem must be a PEM public key (-----BEGIN PUBLIC KEY----- ... -----END PUBLIC KEY-----), never the private key."
  }
}

variable "schedules" {
  description = "Cron expression (5 fields, in time_zone) per stage; an empty string means no schedule (run it by hand with gcloud run jobs execute)."
  type        = map(string)
  default = {
    raw      = "*/15 * * * *"
    standard = "5 * * * *"
    reduce   = "30 3 * * *"
    query    = ""
  }

  validation {
    condition     = alltrue([for k in keys(var.schedules) : contains(["raw", "standard", "reduce", "query"], k)])
    error_message = "schedules keys must be stage names: raw, standard, reduce, query."
  }

  validation {
    condition     = alltrue([for v in values(var.schedules) : v == "" || can(regex("^[^ ]+( [^ ]+){4}$", v))])
    error_message = "Each schedule must be empty or a 5-field cron expression such as \"*/15 * * * *\"."
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
  description = "Parallel tasks of one raw execution. Concurrent raw runs are safe by design (create-only claims), so >1 only spreads partitions across tasks' workers."
  type        = number
  default     = 1

  validation {
    condition     = var.raw_task_count >= 1 && var.raw_task_count <= 10 && floor(var.raw_task_count) == var.raw_task_count
    error_message = "raw_task_count must be a whole number from 1 to 10."
  }
}

variable "job_timeout_seconds" {
  description = "Timeout of one task of any stage, in seconds (60-86400)."
  type        = number
  default     = 3600

  validation {
    condition     = var.job_timeout_seconds >= 60 && var.job_timeout_seconds <= 86400 && floor(var.job_timeout_seconds) == var.job_timeout_seconds
    error_message = "job_timeout_seconds must be a whole number from 60 to 86400."
  }
}

variable "job_resources" {
  description = "CPU and memory limits of each stage's container."
  type        = map(object({ cpu = string, memory = string }))
  default = {
    raw      = { cpu = "2", memory = "2Gi" }
    standard = { cpu = "2", memory = "4Gi" }
    reduce   = { cpu = "2", memory = "4Gi" }
    query    = { cpu = "2", memory = "4Gi" }
  }

  validation {
    condition     = alltrue([for k in ["raw", "standard", "reduce", "query"] : contains(keys(var.job_resources), k)])
    error_message = "job_resources needs an entry for each of raw, standard, reduce and query."
  }
}

variable "stage_args" {
  description = "Replaces the default command line (after the image's ENTRYPOINT etl) of the named stages, e.g. { raw = [\"raw\", \"--max-records\", \"1000000\", ...] }."
  type        = map(list(string))
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.stage_args) : contains(["raw", "standard", "reduce", "query"], k)])
    error_message = "stage_args keys must be stage names: raw, standard, reduce, query."
  }
}

variable "raw_extra_args" {
  description = "Extra flags for etl raw, e.g. [\"--max-records\", \"5000000\", \"-X\", \"security.protocol=SSL\"]. Secrets belong in Secret Manager, not here."
  type        = list(string)
  default     = []
}

variable "vpc_network" {
  description = "VPC network for Direct VPC egress of the jobs (needed when the Kafka brokers have private addresses). null: no VPC access."
  type        = string
  default     = null
}

variable "vpc_subnetwork" {
  description = "Subnetwork for Direct VPC egress (with vpc_network)."
  type        = string
  default     = null
}

variable "bigquery_tables" {
  description = "Tables exposed as BigQuery external tables over standard/<table>/ and archive/<table>/ (hive-partitioned Parquet)."
  type        = list(string)
  default     = ["breadcrumbs"]

  validation {
    condition     = alltrue([for t in var.bigquery_tables : can(regex("^[a-z][a-z0-9_]{0,63}$", t))])
    error_message = "bigquery_tables entries must be lowercase identifiers (letters, digits, _)."
  }
}

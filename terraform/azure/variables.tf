variable "subscription_id" {
  description = "Azure subscription id."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.subscription_id))
    error_message = "subscription_id must be a lowercase GUID."
  }
}

variable "location" {
  description = "Azure region, e.g. westeurope."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+[a-z0-9]*$", var.location))
    error_message = "location must be a region name such as westeurope or eastus2 (lowercase, no spaces)."
  }
}

variable "name_prefix" {
  description = "Prefix of every name. Storage account names are global and allow no hyphens: accounts are <prefix>raw, <prefix>standard, <prefix>archive (so at most 16 characters)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{2,15}$", var.name_prefix))
    error_message = "name_prefix must be 3-16 lowercase letters and digits, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags for every resource (app and managed-by are always set)."
  type        = map(string)
  default     = {}

  validation {
    condition     = length(var.tags) <= 40 && alltrue([for k, v in var.tags : length(k) <= 512 && length(v) <= 256 && !can(regex("[<>%&\\\\?/]", k))])
    error_message = "At most 40 extra tags; keys up to 512 characters without <>%&\\?/, values up to 256."
  }
}

variable "replication_type" {
  description = "Replication of the lake storage accounts."
  type        = string
  default     = "GZRS"

  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "RAGRS", "GZRS", "RAGZRS"], var.replication_type)
    error_message = "replication_type must be one of LRS, ZRS, GRS, RAGRS, GZRS, RAGZRS."
  }
}

variable "soft_delete_days" {
  description = "Days deleted blobs and deleted containers stay recoverable (1-365)."
  type        = number
  default     = 30

  validation {
    condition     = var.soft_delete_days >= 7 && var.soft_delete_days <= 365 && floor(var.soft_delete_days) == var.soft_delete_days
    error_message = "soft_delete_days must be a whole number from 7 to 365."
  }
}

variable "noncurrent_version_days" {
  description = "Days a previous blob version is kept before the management policy deletes it (1-365)."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_days >= 1 && var.noncurrent_version_days <= 365 && floor(var.noncurrent_version_days) == var.noncurrent_version_days
    error_message = "noncurrent_version_days must be a whole number from 1 to 365."
  }
}

variable "cold_after_days" {
  description = "Age in days after which raw and archive blobs move from Cool to the Cold tier (30-3650; Cool bills at least 30 days). Cold is online: no rehydration needed."
  type        = number
  default     = 90

  validation {
    condition     = var.cold_after_days >= 30 && var.cold_after_days <= 3650 && floor(var.cold_after_days) == var.cold_after_days
    error_message = "cold_after_days must be a whole number from 30 to 3650."
  }
}

variable "image" {
  description = "Container image of etl, e.g. acmeregistry.azurecr.io/etl:0.1.0. Pin a tag or a digest."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+|@sha256:[a-f0-9]{64})$", var.image)) && !can(regex(":latest$", var.image))
    error_message = "image must be a full image reference with a registry host and a tag (not :latest) or an @sha256: digest."
  }
}

variable "registry_id" {
  description = "Resource id of the Azure Container Registry that holds image; the stage identities get AcrPull on it. null: a public registry."
  type        = string
  default     = null

  validation {
    condition     = var.registry_id == null || can(regex("^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.ContainerRegistry/registries/[^/]+$", coalesce(var.registry_id, "x")))
    error_message = "registry_id must be the resource id of a container registry."
  }
}

variable "brokers" {
  description = "Kafka bootstrap servers, host:port[,host:port...], reachable from container_apps_subnet_id."
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
  description = "Cron expression (5 fields, UTC) per stage; an empty string makes the job manually triggered (az containerapp job start)."
  type        = map(string)
  default = {
    raw      = "*/15 * * * *"
    standard = "5 * * * *"
    reduce   = "30 3 * * *"
    query    = ""
  }

  validation {
    condition     = alltrue([for k in ["raw", "standard", "reduce", "query"] : contains(keys(var.schedules), k)]) && length(var.schedules) == 4
    error_message = "schedules must have exactly the keys raw, standard, reduce and query (empty string = manual)."
  }

  validation {
    condition     = alltrue([for v in values(var.schedules) : v == "" || can(regex("^[^ ]+( [^ ]+){4}$", v))])
    error_message = "Each schedule must be empty or a 5-field cron expression such as \"*/15 * * * *\"."
  }
}

variable "raw_parallelism" {
  description = "Replicas of one raw execution. Concurrent raw runs are safe by design (create-only claims)."
  type        = number
  default     = 1

  validation {
    condition     = var.raw_parallelism >= 1 && var.raw_parallelism <= 10 && floor(var.raw_parallelism) == var.raw_parallelism
    error_message = "raw_parallelism must be a whole number from 1 to 10."
  }
}

variable "job_timeout_seconds" {
  description = "Timeout of one replica of any stage, in seconds."
  type        = number
  default     = 3600

  validation {
    condition     = var.job_timeout_seconds >= 60 && var.job_timeout_seconds <= 86400 && floor(var.job_timeout_seconds) == var.job_timeout_seconds
    error_message = "job_timeout_seconds must be a whole number from 60 to 86400."
  }
}

variable "stage_args" {
  description = "Replaces the default command line (after the image's ENTRYPOINT etl) of the named stages."
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

variable "container_apps_subnet_id" {
  description = "Subnet of the Container Apps environment (workload profiles: /27 or larger, delegated to Microsoft.App/environments, with the Microsoft.Storage and Microsoft.KeyVault service endpoints). The lake accounts and the key vault accept traffic only from it and allowed_ip_ranges."
  type        = string

  validation {
    condition     = can(regex("^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.Network/virtualNetworks/[^/]+/subnets/[^/]+$", var.container_apps_subnet_id))
    error_message = "container_apps_subnet_id must be a subnet resource id."
  }
}

variable "allowed_ip_ranges" {
  description = "Public IP ranges (CIDR, no private ranges) of operators allowed through the storage and key vault firewalls, e.g. to run etl verify from a workstation."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.allowed_ip_ranges : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "allowed_ip_ranges must be CIDR ranges, not 0.0.0.0/0."
  }
}

variable "log_retention_days" {
  description = "Retention of the Log Analytics workspace that receives the job logs (30-730 days)."
  type        = number
  default     = 90

  validation {
    condition     = var.log_retention_days >= 30 && var.log_retention_days <= 730
    error_message = "log_retention_days must be from 30 to 730."
  }
}

# One storage account (with one private container, "lake") per layer: the access tier is a
# property of the account. raw and archive are written once and read rarely: Cool, then Cold by
# age (both online: no rehydration before etl verify/standard or a query). standard is read all
# the time: Hot.
#
# Every account: TLS 1.2+ and HTTPS only, no public blobs, no shared keys (Entra ID RBAC only,
# the "uniform access" of Azure), firewall closed except the Container Apps subnet, blob
# versioning, blob and container soft delete, a management policy. Uncommitted blocks of an
# interrupted upload are discarded by Azure after 7 days (there is no multipart setting).

resource "azurerm_storage_account" "raw" {
  name                = "${var.name_prefix}raw"
  resource_group_name = azurerm_resource_group.etl.name
  location            = azurerm_resource_group.etl.location

  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = var.replication_type
  access_tier              = "Cool"

  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  infrastructure_encryption_enabled = true
  cross_tenant_replication_enabled  = false
  local_user_enabled                = false

  blob_properties {
    versioning_enabled = true

    delete_retention_policy {
      days = var.soft_delete_days
    }
    container_delete_retention_policy {
      days = var.soft_delete_days
    }
  }

  network_rules {
    default_action             = "Deny"
    bypass                     = ["AzureServices", "Logging", "Metrics"]
    virtual_network_subnet_ids = [var.container_apps_subnet_id]
    ip_rules                   = var.allowed_ip_ranges
  }

  tags = merge(local.tags, { layer = "raw" })

  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys plus infrastructure encryption; raw objects are already envelope-encrypted by etl (RSA-OAEP + AES-256-GCM).
  #checkov:skip=CKV2_AZURE_33:No private endpoint: the firewall admits only the Container Apps subnet (service endpoint) and allowed_ip_ranges.
  #checkov:skip=CKV_AZURE_59:Public network access is limited by network_rules (default Deny); a private endpoint would be needed to disable it.
  #checkov:skip=CKV_AZURE_33:No queues are used in the lake accounts.
  #checkov:skip=CKV2_AZURE_41:Shared keys are disabled, so no SAS can be signed with them.
}

resource "azurerm_storage_account" "standard" {
  name                = "${var.name_prefix}standard"
  resource_group_name = azurerm_resource_group.etl.name
  location            = azurerm_resource_group.etl.location

  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = var.replication_type
  access_tier              = "Hot"

  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  infrastructure_encryption_enabled = true
  cross_tenant_replication_enabled  = false
  local_user_enabled                = false

  blob_properties {
    versioning_enabled = true

    delete_retention_policy {
      days = var.soft_delete_days
    }
    container_delete_retention_policy {
      days = var.soft_delete_days
    }
  }

  network_rules {
    default_action             = "Deny"
    bypass                     = ["AzureServices", "Logging", "Metrics"]
    virtual_network_subnet_ids = [var.container_apps_subnet_id]
    ip_rules                   = var.allowed_ip_ranges
  }

  tags = merge(local.tags, { layer = "standard" })

  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys plus infrastructure encryption are enough for the Parquet layer.
  #checkov:skip=CKV2_AZURE_33:No private endpoint: the firewall admits only the Container Apps subnet (service endpoint) and allowed_ip_ranges.
  #checkov:skip=CKV_AZURE_59:Public network access is limited by network_rules (default Deny); a private endpoint would be needed to disable it.
  #checkov:skip=CKV_AZURE_33:No queues are used in the lake accounts.
  #checkov:skip=CKV2_AZURE_41:Shared keys are disabled, so no SAS can be signed with them.
}

resource "azurerm_storage_account" "archive" {
  name                = "${var.name_prefix}archive"
  resource_group_name = azurerm_resource_group.etl.name
  location            = azurerm_resource_group.etl.location

  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = var.replication_type
  access_tier              = "Cool"

  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  infrastructure_encryption_enabled = true
  cross_tenant_replication_enabled  = false
  local_user_enabled                = false

  blob_properties {
    versioning_enabled = true

    delete_retention_policy {
      days = var.soft_delete_days
    }
    container_delete_retention_policy {
      days = var.soft_delete_days
    }
  }

  network_rules {
    default_action             = "Deny"
    bypass                     = ["AzureServices", "Logging", "Metrics"]
    virtual_network_subnet_ids = [var.container_apps_subnet_id]
    ip_rules                   = var.allowed_ip_ranges
  }

  tags = merge(local.tags, { layer = "archive" })

  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys plus infrastructure encryption are enough for the Parquet layer.
  #checkov:skip=CKV2_AZURE_33:No private endpoint: the firewall admits only the Container Apps subnet (service endpoint) and allowed_ip_ranges.
  #checkov:skip=CKV_AZURE_59:Public network access is limited by network_rules (default Deny); a private endpoint would be needed to disable it.
  #checkov:skip=CKV_AZURE_33:No queues are used in the lake accounts.
  #checkov:skip=CKV2_AZURE_41:Shared keys are disabled, so no SAS can be signed with them.
}

# Containers are created through Azure Resource Manager (storage_account_id), which works with
# shared keys disabled and the data-plane firewall closed.
resource "azurerm_storage_container" "raw" {
  name                  = local.container
  storage_account_id    = azurerm_storage_account.raw.id
  container_access_type = "private"

  #checkov:skip=CKV2_AZURE_21:Blob reads, writes and deletes go to Log Analytics through azurerm_monitor_diagnostic_setting.blob; storage insights would need the shared keys, which are disabled.
}

resource "azurerm_storage_container" "standard" {
  name                  = local.container
  storage_account_id    = azurerm_storage_account.standard.id
  container_access_type = "private"

  #checkov:skip=CKV2_AZURE_21:Blob reads, writes and deletes go to Log Analytics through azurerm_monitor_diagnostic_setting.blob; storage insights would need the shared keys, which are disabled.
}

resource "azurerm_storage_container" "archive" {
  name                  = local.container
  storage_account_id    = azurerm_storage_account.archive.id
  container_access_type = "private"

  #checkov:skip=CKV2_AZURE_21:Blob reads, writes and deletes go to Log Analytics through azurerm_monitor_diagnostic_setting.blob; storage insights would need the shared keys, which are disabled.
}

# Management policies: Cool -> Cold by age for everything under the cold layers' prefixes, and
# previous versions (left by overwrites and deletes) expire everywhere.
resource "azurerm_storage_management_policy" "raw" {
  storage_account_id = azurerm_storage_account.raw.id

  rule {
    name    = "tier-down-sealed-objects"
    enabled = true
    filters {
      blob_types   = ["blockBlob"]
      prefix_match = ["${local.container}/raw/"]
    }
    actions {
      base_blob {
        tier_to_cold_after_days_since_creation_greater_than = var.cold_after_days
      }
    }
  }

  rule {
    name    = "expire-previous-versions"
    enabled = true
    filters {
      blob_types = ["blockBlob"]
    }
    actions {
      version {
        delete_after_days_since_creation = var.noncurrent_version_days
      }
    }
  }
}

resource "azurerm_storage_management_policy" "standard" {
  storage_account_id = azurerm_storage_account.standard.id

  rule {
    name    = "expire-previous-versions"
    enabled = true
    filters {
      blob_types = ["blockBlob"]
    }
    actions {
      version {
        delete_after_days_since_creation = var.noncurrent_version_days
      }
    }
  }
}

resource "azurerm_storage_management_policy" "archive" {
  storage_account_id = azurerm_storage_account.archive.id

  rule {
    name    = "tier-down-parquet"
    enabled = true
    filters {
      blob_types   = ["blockBlob"]
      prefix_match = ["${local.container}/archive/"]
    }
    actions {
      base_blob {
        tier_to_cold_after_days_since_creation_greater_than = var.cold_after_days
      }
    }
  }

  rule {
    name    = "expire-previous-versions"
    enabled = true
    filters {
      blob_types = ["blockBlob"]
    }
    actions {
      version {
        delete_after_days_since_creation = var.noncurrent_version_days
      }
    }
  }
}

# Audit log of every blob read, write and delete, in the jobs' Log Analytics workspace.
resource "azurerm_monitor_diagnostic_setting" "blob" {
  for_each = {
    raw      = azurerm_storage_account.raw.id
    standard = azurerm_storage_account.standard.id
    archive  = azurerm_storage_account.archive.id
  }

  name                       = "etl-blob-audit"
  target_resource_id         = "${each.value}/blobServices/default"
  log_analytics_workspace_id = azurerm_log_analytics_workspace.etl.id

  enabled_log {
    category = "StorageRead"
  }
  enabled_log {
    category = "StorageWrite"
  }
  enabled_log {
    category = "StorageDelete"
  }
}

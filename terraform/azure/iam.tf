# One user-assigned identity per stage. Every role assignment is scoped to one container or to
# the private-key secret, never to an account, resource group or subscription:
#
#   stage     raw container        standard container   archive container    private key secret
#   raw       etl raw writer       -                    -                    -
#   standard  Blob Data Reader     etl table writer     -                    Key Vault Secrets User
#   reduce    -                    Blob Data Reader     etl table writer     -
#   query     -                    Blob Data Reader     Blob Data Reader     -
#
# "etl raw writer" may read, list and create blobs but not delete them; "etl table writer" may
# also delete (standard and reduce publish tables through manifests and remove replaced files).

resource "azurerm_user_assigned_identity" "stage" {
  for_each = toset(local.stages)

  name                = "${var.name_prefix}-etl-${each.key}"
  resource_group_name = azurerm_resource_group.etl.name
  location            = azurerm_resource_group.etl.location
  tags                = local.tags
}

resource "azurerm_role_definition" "raw_writer" {
  name        = "${var.name_prefix} etl raw writer"
  scope       = azurerm_resource_group.etl.id
  description = "Read, list and create blobs; no delete."

  permissions {
    actions = []
    data_actions = [
      "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
      "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
      "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action",
    ]
  }

  assignable_scopes = [azurerm_resource_group.etl.id]
}

resource "azurerm_role_definition" "table_writer" {
  name        = "${var.name_prefix} etl table writer"
  scope       = azurerm_resource_group.etl.id
  description = "Read, list, create and delete blobs (publishing Parquet tables through manifests)."

  permissions {
    actions = []
    data_actions = [
      "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
      "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
      "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action",
      "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
    ]
  }

  assignable_scopes = [azurerm_resource_group.etl.id]
}

locals {
  container_scope = {
    raw      = "${azurerm_storage_account.raw.id}/blobServices/default/containers/${azurerm_storage_container.raw.name}"
    standard = "${azurerm_storage_account.standard.id}/blobServices/default/containers/${azurerm_storage_container.standard.name}"
    archive  = "${azurerm_storage_account.archive.id}/blobServices/default/containers/${azurerm_storage_container.archive.name}"
  }

  container_grants = {
    raw-writes-raw           = { stage = "raw", layer = "raw", role_id = azurerm_role_definition.raw_writer.role_definition_resource_id, role = null }
    standard-reads-raw       = { stage = "standard", layer = "raw", role_id = null, role = "Storage Blob Data Reader" }
    standard-writes-standard = { stage = "standard", layer = "standard", role_id = azurerm_role_definition.table_writer.role_definition_resource_id, role = null }
    reduce-reads-standard    = { stage = "reduce", layer = "standard", role_id = null, role = "Storage Blob Data Reader" }
    reduce-writes-archive    = { stage = "reduce", layer = "archive", role_id = azurerm_role_definition.table_writer.role_definition_resource_id, role = null }
    query-reads-standard     = { stage = "query", layer = "standard", role_id = null, role = "Storage Blob Data Reader" }
    query-reads-archive      = { stage = "query", layer = "archive", role_id = null, role = "Storage Blob Data Reader" }
  }
}

resource "azurerm_role_assignment" "container" {
  for_each = local.container_grants

  scope                = local.container_scope[each.value.layer]
  role_definition_id   = each.value.role_id
  role_definition_name = each.value.role
  principal_id         = azurerm_user_assigned_identity.stage[each.value.stage].principal_id
  principal_type       = "ServicePrincipal"
}

# Only the standard identity may read the private key, and only that one secret.
resource "azurerm_role_assignment" "standard_reads_private_key" {
  scope                = "${azurerm_key_vault.etl.id}/secrets/${local.private_key_vault_secret}"
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.stage["standard"].principal_id
  principal_type       = "ServicePrincipal"
}

# Pulling the image from the registry (when it is an Azure Container Registry).
resource "azurerm_role_assignment" "acr_pull" {
  for_each = var.registry_id == null ? toset([]) : toset(local.stages)

  scope                = var.registry_id
  role_definition_name = "AcrPull"
  principal_id         = azurerm_user_assigned_identity.stage[each.key].principal_id
  principal_type       = "ServicePrincipal"
}

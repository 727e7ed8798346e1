# DELIBERATELY BROKEN (see gcs.tf): an Azure raw-layer account on the Hot tier, with public
# blobs allowed, TLS 1.0, shared keys, no soft delete, no versioning and no management policy.
resource "azurerm_storage_account" "raw" {
  name                     = "brokenetlraw"
  resource_group_name      = "broken"
  location                 = "westeurope"
  account_tier             = "Standard"
  account_replication_type = "LRS"
  access_tier              = "Hot"

  min_tls_version                 = "TLS1_0"
  allow_nested_items_to_be_public = true
  shared_access_key_enabled       = true

  tags = {
    layer = "raw"
  }
}

# The key vault holds one secret: the private key (name etl-private-key), added by hand so its
# value never enters the terraform state. RBAC only, purge protection, network closed except the
# Container Apps subnet and allowed_ip_ranges.
resource "azurerm_key_vault" "etl" {
  name                = "${var.name_prefix}-etl-kv"
  resource_group_name = azurerm_resource_group.etl.name
  location            = azurerm_resource_group.etl.location
  tenant_id           = data.azurerm_client_config.current.tenant_id
  sku_name            = "standard"

  enable_rbac_authorization  = true
  purge_protection_enabled   = true
  soft_delete_retention_days = 90

  network_acls {
    default_action             = "Deny"
    bypass                     = "AzureServices"
    virtual_network_subnet_ids = [var.container_apps_subnet_id]
    ip_rules                   = var.allowed_ip_ranges
  }

  tags = local.tags

  #checkov:skip=CKV2_AZURE_32:No private endpoint: the firewall admits only the Container Apps subnet (service endpoint) and allowed_ip_ranges.
}

output "storage_accounts" {
  description = "Storage account of each layer (one private container \"lake\" each)."
  value = {
    raw      = azurerm_storage_account.raw.name
    standard = azurerm_storage_account.standard.name
    archive  = azurerm_storage_account.archive.name
  }
}

output "lake_urls" {
  description = "Account-qualified lake URL of each layer."
  value       = local.lake_url
}

output "identities" {
  description = "Client id of each stage's user-assigned identity."
  value       = { for stage, id in azurerm_user_assigned_identity.stage : stage => id.client_id }
}

output "jobs" {
  description = "Container Apps job of each stage (az containerapp job start -n NAME -g RESOURCE_GROUP)."
  value       = { for stage, job in azurerm_container_app_job.stage : stage => job.name }
}

output "resource_group" {
  description = "Resource group of everything."
  value       = azurerm_resource_group.etl.name
}

output "key_vault" {
  description = "Key vault that must hold the private key as secret etl-private-key (set it by hand)."
  value       = azurerm_key_vault.etl.name
}

resource "azurerm_log_analytics_workspace" "etl" {
  name                = "${var.name_prefix}-etl-logs"
  resource_group_name = azurerm_resource_group.etl.name
  location            = azurerm_resource_group.etl.location
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = local.tags
}

resource "azurerm_container_app_environment" "etl" {
  name                           = "${var.name_prefix}-etl"
  resource_group_name            = azurerm_resource_group.etl.name
  location                       = azurerm_resource_group.etl.location
  log_analytics_workspace_id     = azurerm_log_analytics_workspace.etl.id
  infrastructure_subnet_id       = var.container_apps_subnet_id
  internal_load_balancer_enabled = true

  workload_profile {
    name                  = "Consumption"
    workload_profile_type = "Consumption"
  }

  tags = local.tags
}

locals {
  # Container Apps secrets of each job; all of a job's secrets are mounted as files in key_dir.
  job_secrets = {
    raw = [{
      name                = local.public_key_secret
      value               = "${trimspace(var.public_key_pem)}\n"
      key_vault_secret_id = null
      identity            = null
    }]
    standard = [{
      name                = local.private_key_secret
      value               = null
      key_vault_secret_id = "${azurerm_key_vault.etl.vault_uri}secrets/${local.private_key_vault_secret}"
      identity            = azurerm_user_assigned_identity.stage["standard"].id
    }]
    reduce = []
    query  = []
  }

  job_env = {
    raw = { AZURE_STORAGE_ACCOUNT_NAME = azurerm_storage_account.raw.name }
  }
}

# One Container Apps job per stage: a cron trigger, or a manual trigger when its schedule is "".
resource "azurerm_container_app_job" "stage" {
  for_each = toset(local.stages)

  name                         = "${var.name_prefix}-etl-${each.key}"
  resource_group_name          = azurerm_resource_group.etl.name
  location                     = azurerm_resource_group.etl.location
  container_app_environment_id = azurerm_container_app_environment.etl.id
  workload_profile_name        = "Consumption"

  replica_timeout_in_seconds = var.job_timeout_seconds
  # A failed run is retried by the next scheduled run, which resumes from the lake's checkpoint.
  replica_retry_limit = 0

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.stage[each.key].id]
  }

  dynamic "schedule_trigger_config" {
    for_each = var.schedules[each.key] == "" ? [] : [var.schedules[each.key]]
    content {
      cron_expression          = schedule_trigger_config.value
      parallelism              = each.key == "raw" ? var.raw_parallelism : 1
      replica_completion_count = each.key == "raw" ? var.raw_parallelism : 1
    }
  }

  dynamic "manual_trigger_config" {
    for_each = var.schedules[each.key] == "" ? [1] : []
    content {
      parallelism              = 1
      replica_completion_count = 1
    }
  }

  dynamic "registry" {
    for_each = var.registry_id == null ? [] : [split("/", var.image)[0]]
    content {
      server   = registry.value
      identity = azurerm_user_assigned_identity.stage[each.key].id
    }
  }

  dynamic "secret" {
    for_each = local.job_secrets[each.key]
    content {
      name                = secret.value.name
      value               = secret.value.value
      key_vault_secret_id = secret.value.key_vault_secret_id
      identity            = secret.value.identity
    }
  }

  template {
    container {
      name   = "etl"
      image  = var.image
      cpu    = 1
      memory = "2Gi"
      args   = local.job_args[each.key]

      # object_store picks the managed identity from IDENTITY_ENDPOINT/IDENTITY_HEADER (set by
      # Container Apps) and this client id.
      env {
        name  = "AZURE_CLIENT_ID"
        value = azurerm_user_assigned_identity.stage[each.key].client_id
      }

      env {
        name  = "ETL_LOG"
        value = "info"
      }

      dynamic "env" {
        for_each = lookup(local.job_env, each.key, {})
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "volume_mounts" {
        for_each = length(local.job_secrets[each.key]) > 0 ? [1] : []
        content {
          name = "keys"
          path = local.key_dir
        }
      }
    }

    dynamic "volume" {
      for_each = length(local.job_secrets[each.key]) > 0 ? [1] : []
      content {
        name         = "keys"
        storage_type = "Secret"
      }
    }
  }

  tags = merge(local.tags, { stage = each.key })

  depends_on = [
    azurerm_role_assignment.container,
    azurerm_role_assignment.standard_reads_private_key,
    azurerm_role_assignment.acr_pull,
  ]
}

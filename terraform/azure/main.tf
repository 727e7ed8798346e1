data "azurerm_client_config" "current" {}

locals {
  stages = ["raw", "standard", "reduce", "query"]

  tags = merge(var.tags, {
    app        = "etl"
    managed-by = "terraform"
  })

  container = "lake"

  # Account-qualified lake URLs (object_store's abfss form).
  lake_url = {
    raw      = "abfss://${local.container}@${azurerm_storage_account.raw.name}.dfs.core.windows.net"
    standard = "abfss://${local.container}@${azurerm_storage_account.standard.name}.dfs.core.windows.net"
    archive  = "abfss://${local.container}@${azurerm_storage_account.archive.name}.dfs.core.windows.net"
  }

  # Key files: every secret of a job is mounted as a file named after the secret (jobs.tf).
  public_key_secret  = "etl-public-pem"
  private_key_secret = "etl-private-pem"
  key_dir            = "/secrets"

  # The raw job names its one account through AZURE_STORAGE_ACCOUNT_NAME (az://container works
  # with every etl version); the other stages read and write two accounts and use the
  # account-qualified URLs.
  default_args = {
    raw      = concat(["raw", "--brokers", var.brokers, "--topic", var.topic, "--lake", "az://${local.container}", "--public-key", "${local.key_dir}/${local.public_key_secret}"], var.raw_extra_args)
    standard = ["standard", "--topic", var.topic, "--raw-lake", local.lake_url.raw, "--standard-lake", local.lake_url.standard, "--private-key", "${local.key_dir}/${local.private_key_secret}"]
    reduce   = ["reduce", "--standard-lake", local.lake_url.standard, "--archive-lake", local.lake_url.archive]
    query    = ["query", "--standard-lake", local.lake_url.standard, "--archive-lake", local.lake_url.archive, "--name", "quality_summary"]
  }
  job_args = merge(local.default_args, var.stage_args)

  # The key vault holds exactly one secret, the private key, added by hand (../README.md).
  private_key_vault_secret = "etl-private-key"
}

resource "azurerm_resource_group" "etl" {
  name     = "${var.name_prefix}-etl"
  location = var.location
  tags     = local.tags
}

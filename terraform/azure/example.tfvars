subscription_id = "00000000-0000-0000-0000-000000000000"
location        = "westeurope"
name_prefix     = "acmeetlprod"
image           = "acmeregistry.azurecr.io/etl:0.1.0"
registry_id     = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/shared/providers/Microsoft.ContainerRegistry/registries/acmeregistry"
brokers         = "10.30.0.11:9092,10.30.0.12:9092,10.30.0.13:9092"
topic           = "breadcrumbs"

public_key_pem = <<-PEM
  -----BEGIN PUBLIC KEY-----
  MIIBojANBgkqhkiG9w0BAQEFAAOCAY8AMIIBigKCAYEA...
  -----END PUBLIC KEY-----
PEM

container_apps_subnet_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/network/providers/Microsoft.Network/virtualNetworks/data/subnets/etl-jobs"
allowed_ip_ranges        = ["203.0.113.0/28"]

schedules = {
  raw      = "*/15 * * * *"
  standard = "5 * * * *"
  reduce   = "30 3 * * *"
  query    = ""
}

tags = {
  team = "data-platform"
  env  = "prod"
}

# The task's secrets, all encrypted with the module's key and injected as ECS secrets (never
# in the task definition's environment):
#
#   DATABASE_URL            this secret: host, port, database, user and TLS settings, no password
#   MLGW_DATABASE_PASSWORD  the "password" key of RDS's own master secret (rotated by RDS)
#   MLGW_CALLBACK_SECRET    generated here; EventBridge's connection sends it as X-Callback-Key
#   MLGW_WEBHOOK_SECRET     generated here; the key of webhooks' X-Signature
#   MLGW_SMTP_PASSWORD      var.smtp_password, when set (SES SMTP credentials: README)
#
# The generated values are drawn once (Secrets Manager's GetRandomPassword) and then kept:
# the secret versions ignore later draws; rotating is put-secret-value plus a new deployment
# (deploy/README.md).

# verify-full against the RDS certificate authorities' bundle the image carries
# (images/gateway/Dockerfile): the connection is encrypted and the server is authenticated.
resource "aws_secretsmanager_secret" "database_url" {
  #checkov:skip=CKV2_AWS_57:holds no password (RDS rotates the password in its own secret); nothing here to rotate
  name                    = "${local.prefix}/database-url"
  description             = "DATABASE_URL of ${local.prefix} (no password: MLGW_DATABASE_PASSWORD comes from the RDS master secret)"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "database_url" {
  secret_id     = aws_secretsmanager_secret.database_url.id
  secret_string = "postgresql://${aws_db_instance.this.username}@${aws_db_instance.this.address}:${aws_db_instance.this.port}/${aws_db_instance.this.db_name}?sslmode=verify-full&sslrootcert=/opt/ml-gateway/rds-ca-bundle.pem"
}

data "aws_secretsmanager_random_password" "generated" {
  for_each = toset(["callback", "webhook"])

  password_length            = 48
  exclude_punctuation        = true # a header value and an HMAC key: letters and digits only
  require_each_included_type = true
}

resource "aws_secretsmanager_secret" "generated" {
  #checkov:skip=CKV2_AWS_57:a shared key with EventBridge (callback) or with webhook receivers: rotation must change both ends at once, which deploy/README.md describes
  for_each = data.aws_secretsmanager_random_password.generated

  name                    = "${local.prefix}/${each.key}-secret"
  description             = each.key == "callback" ? "MLGW_CALLBACK_SECRET of ${local.prefix} (EventBridge's X-Callback-Key)" : "MLGW_WEBHOOK_SECRET of ${local.prefix} (webhooks' X-Signature key)"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "generated" {
  for_each = data.aws_secretsmanager_random_password.generated

  secret_id     = aws_secretsmanager_secret.generated[each.key].id
  secret_string = each.value.random_password

  # Drawn once: a new draw at every plan must not replace the secret in use.
  lifecycle {
    ignore_changes = [secret_string]
  }
}

resource "aws_secretsmanager_secret" "smtp" {
  #checkov:skip=CKV2_AWS_57:SMTP credentials are issued by the mail provider (SES: an IAM user's SMTP password); rotating is issuing new ones and setting smtp_password
  count = local.smtp_secret ? 1 : 0

  name                    = "${local.prefix}/smtp-password"
  description             = "MLGW_SMTP_PASSWORD of ${local.prefix}"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "smtp" {
  count = local.smtp_secret ? 1 : 0

  secret_id     = aws_secretsmanager_secret.smtp[0].id
  secret_string = var.smtp_password
}

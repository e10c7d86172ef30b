# PostgreSQL 16 on RDS: private (no public address, reachable from the tasks' security group
# only), encrypted with the module's key, TLS required (rds.force_ssl), automated backups,
# deletion protection, and the master password made, kept and rotated by RDS in Secrets
# Manager (manage_master_user_password): Terraform never sees it.

resource "aws_db_subnet_group" "this" {
  name       = "${local.prefix}-db"
  subnet_ids = var.subnet_ids
}

resource "aws_db_parameter_group" "this" {
  name_prefix = "${local.prefix}-pg16-"
  family      = "postgres16"
  description = "${local.prefix}: TLS only, slow statements logged"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "1000" # ms: statements slower than a second reach the PostgreSQL log
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_disconnections"
    value = "1"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_instance" "this" {
  #checkov:skip=CKV_AWS_161:the gateway signs in with a password from Secrets Manager (rotated by RDS); IAM authentication would need token refresh in the gateway's pool
  #checkov:skip=CKV_AWS_353:Performance Insights is db_performance_insights (off by default: not every small instance class offers it); CloudWatch metrics and the PostgreSQL log are on
  #checkov:skip=CKV_AWS_354:when db_performance_insights is on, its data is encrypted with the module's key
  #checkov:skip=CKV_AWS_118:enhanced monitoring needs its own IAM role and costs per instance; Performance Insights and CloudWatch metrics are on
  #checkov:skip=CKV2_AWS_30:query logging (log_statement) would write every job's SQL; slow statements (over 1 s), connections and errors are logged
  identifier     = "${local.prefix}-db"
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class

  db_name                       = "mlgw"
  username                      = "mlgw"
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.this.arn
  port                          = 5432

  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.this.arn

  multi_az               = var.db_multi_az
  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.database.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.this.name

  backup_retention_period   = var.db_backup_retention_days
  backup_window             = "03:00-04:00"
  maintenance_window        = "sun:04:30-sun:05:30"
  copy_tags_to_snapshot     = true
  deletion_protection       = var.db_deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${local.prefix}-db-final"
  delete_automated_backups  = false

  auto_minor_version_upgrade            = true
  performance_insights_enabled          = var.db_performance_insights
  performance_insights_kms_key_id       = var.db_performance_insights ? aws_kms_key.this.arn : null
  performance_insights_retention_period = var.db_performance_insights ? 7 : null
  enabled_cloudwatch_logs_exports       = keys(aws_cloudwatch_log_group.database)
  iam_database_authentication_enabled   = false
}

# The logs RDS exports, made here first so that they expire and are encrypted (RDS would make
# them itself, kept forever).
resource "aws_cloudwatch_log_group" "database" {
  #checkov:skip=CKV_AWS_338:retention is the log_retention_days variable (30 by default), as for the gateway's own logs
  for_each = toset(["postgresql", "upgrade"])

  name              = "/aws/rds/instance/${local.prefix}-db/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

# Plan-only runs of the module on its own (the stand-in providers plan, they never apply): the
# guards of its variables.
variables {
  name        = "unit"
  vpc_id      = "vpc-0123456789abcdef0"
  subnet_ids  = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
  gateway_env = { AWS_REGION = "us-east-1", MLGW_DISPATCH = "batch" }

  job_queue_arns       = { gpu = "arn:aws:batch:us-east-1:123456789012:job-queue/unit-gpu", cpu = "arn:aws:batch:us-east-1:123456789012:job-queue/unit-cpu" }
  job_definition_names = { gpu = "unit-gpu", cpu = "unit-cpu" }
  topic_arns           = { trigger = "arn:aws:sns:us-east-1:123456789012:unit-trigger", notifications = "arn:aws:sns:us-east-1:123456789012:unit-notifications" }
  bucket_arns          = { input = "arn:aws:s3:::unit-input", output = "arn:aws:s3:::unit-output", models = "arn:aws:s3:::unit-models" }
  job_log_group_arn    = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/batch/unit-ml-jobs"

  efs_file_system_id   = "fs-0123456789abcdef0"
  efs_file_system_arn  = "arn:aws:elasticfilesystem:us-east-1:123456789012:file-system/fs-0123456789abcdef0"
  efs_access_point_id  = "fsap-0123456789abcdef0"
  efs_access_point_arn = "arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/fsap-0123456789abcdef0"

  image                = "123456789012.dkr.ecr.us-east-1.amazonaws.com/unit-ml-gateway:abc"
  image_repository_arn = "arn:aws:ecr:us-east-1:123456789012:repository/unit-ml-gateway"
  domain_name          = "ml.example.com"
  certificate_arn      = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
}

run "plans_with_these_inputs" {
  command = plan

  assert {
    condition     = aws_lb_target_group.this.deregistration_delay == "15" && aws_lb_target_group.this.health_check[0].path == "/readyz"
    error_message = "deregistration delay MLGW_SHUTDOWN_TIMEOUT + 5 s, health check on /readyz"
  }

  assert {
    condition     = output.task_environment["MLGW_SHUTDOWN_TIMEOUT"] == "10" && output.task_environment["MLGW_LISTEN"] == "0.0.0.0:8080"
    error_message = "the task listens on 8080 with the shutdown budget the load balancer waits for"
  }
}

run "rejects_a_secret_in_the_plain_environment" {
  command = plan

  variables {
    extra_environment = { MLGW_WEBHOOK_SECRET = "not here" }
  }

  expect_failures = [var.extra_environment]
}

run "rejects_overriding_what_the_module_sets" {
  command = plan

  variables {
    extra_environment = { MLGW_LISTEN = "0.0.0.0:9090" }
  }

  expect_failures = [var.extra_environment]
}

run "rejects_names_that_are_not_gateway_settings" {
  command = plan

  variables {
    extra_environment = { LD_PRELOAD = "/tmp/x.so" }
  }

  expect_failures = [var.extra_environment]
}

run "rejects_postgresql_other_than_16" {
  command = plan

  variables {
    db_engine_version = "15.7"
  }

  expect_failures = [var.db_engine_version]
}

run "rejects_a_shutdown_budget_fargate_cannot_wait_for" {
  command = plan

  variables {
    shutdown_timeout_seconds = 300
  }

  expect_failures = [var.shutdown_timeout_seconds]
}

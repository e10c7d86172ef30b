# Plan-only runs of deploy/ with terraform.tfvars.example's values (the stand-in providers plan,
# they never apply): the gateway module's switches and guards.
variables {
  ml_container_image      = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ml-pipeline-ml-python:latest"
  gateway_image           = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ml-pipeline-ml-gateway:0123abc"
  gateway_domain_name     = "ml.example.com"
  gateway_certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
}

run "the_gateway_by_default" {
  command = plan

  assert {
    condition     = length(module.gateway) == 1 && output.gateway_url == "https://ml.example.com"
    error_message = "enable_gateway defaults to true and the gateway is reached at https://<gateway_domain_name>"
  }

  assert {
    condition     = join(",", output.gateway_task_secret_names) == "DATABASE_URL,MLGW_CALLBACK_SECRET,MLGW_DATABASE_PASSWORD,MLGW_WEBHOOK_SECRET"
    error_message = "without SMTP the task's secrets are the database's, the callback's and the webhooks'"
  }

  assert {
    condition     = !contains(keys(output.gateway_task_environment), "MLGW_SMTP_URL") && !contains(keys(output.gateway_task_environment), "MLGW_SNS_TOPIC_ARNS")
    error_message = "no SMTP or SNS settings unless asked for"
  }
}

run "pipeline_only" {
  command = plan

  variables {
    enable_gateway = false
    gateway_image  = null
  }

  assert {
    condition     = length(module.gateway) == 0 && output.gateway_url == null
    error_message = "enable_gateway = false plans no gateway"
  }
}

run "smtp_and_sns" {
  command = plan

  variables {
    gateway_smtp_url             = "smtp://email-smtp.us-east-1.amazonaws.com:587"
    gateway_smtp_from            = "ml-gateway <ml@example.com>"
    gateway_smtp_user            = "AKIAEXAMPLE"
    gateway_smtp_password        = "ses-smtp-password"
    gateway_notify_emails        = ["a@example.com", "b@example.com"]
    gateway_sns_event_topic_arns = ["arn:aws:sns:us-east-1:123456789012:elsewhere"]
  }

  assert {
    condition     = contains(output.gateway_task_secret_names, "MLGW_SMTP_PASSWORD") && !contains(keys(output.gateway_task_environment), "MLGW_SMTP_PASSWORD")
    error_message = "the SMTP password is an ECS secret, never plain"
  }

  assert {
    condition     = output.gateway_task_environment["MLGW_SMTP_URL"] == "smtp://email-smtp.us-east-1.amazonaws.com:587" && output.gateway_task_environment["MLGW_NOTIFY_EMAILS"] == "a@example.com,b@example.com"
    error_message = "SMTP settings reach the task"
  }

  assert {
    condition     = output.gateway_task_environment["MLGW_SNS_TOPIC_ARNS"] == "arn:aws:sns:us-east-1:123456789012:elsewhere" && length(module.gateway[0].task_secret_names) == 5
    error_message = "the SNS path sets MLGW_SNS_TOPIC_ARNS"
  }
}

# Security groups (internet or ingress_cidrs -> load balancer -> tasks -> database and the
# model cache), the load balancer with its listeners, the target group, and the DNS record.

resource "aws_security_group" "alb" {
  name        = "${local.prefix}-alb"
  description = "${local.prefix} load balancer: HTTPS and HTTP (redirected) from ingress_cidrs"
  vpc_id      = var.vpc_id

  tags = { Name = "${local.prefix}-alb" }
}

resource "aws_vpc_security_group_ingress_rule" "alb" {
  #checkov:skip=CKV_AWS_260:port 80 only answers a redirect to HTTPS (aws_lb_listener.http); ingress_cidrs may be the internet because EventBridge and SNS call from AWS's public addresses
  for_each = { for pair in setproduct(var.ingress_cidrs, [80, 443]) : "${pair[0]}:${pair[1]}" => pair }

  security_group_id = aws_security_group.alb.id
  description       = each.value[1] == 443 ? "HTTPS from ${each.value[0]}" : "HTTP (redirect to HTTPS) from ${each.value[0]}"
  ip_protocol       = "tcp"
  from_port         = each.value[1]
  to_port           = each.value[1]
  cidr_ipv4         = each.value[0]
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  security_group_id            = aws_security_group.alb.id
  description                  = "To the gateway's tasks"
  ip_protocol                  = "tcp"
  from_port                    = local.port
  to_port                      = local.port
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_security_group" "tasks" {
  name        = "${local.prefix}-tasks"
  description = "${local.prefix} tasks: ${local.port} from the load balancer only"
  vpc_id      = var.vpc_id

  tags = { Name = "${local.prefix}-tasks" }
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_alb" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "HTTP from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = local.port
  to_port                      = local.port
  referenced_security_group_id = aws_security_group.alb.id
}

# Outbound: AWS APIs (Batch, SNS, S3, Logs, Secrets Manager, ECR), webhooks, SMTP, the
# database and EFS. Webhooks may go anywhere public (the gateway refuses private targets).
resource "aws_vpc_security_group_egress_rule" "tasks_all" {
  security_group_id = aws_security_group.tasks.id
  description       = "Outbound to AWS APIs, webhooks and SMTP"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_security_group" "database" {
  name        = "${local.prefix}-db"
  description = "${local.prefix} PostgreSQL: 5432 from the gateway's tasks only"
  vpc_id      = var.vpc_id

  tags = { Name = "${local.prefix}-db" }
}

resource "aws_vpc_security_group_ingress_rule" "database_from_tasks" {
  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from the gateway's tasks"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.tasks.id
}

# ---- load balancer ------------------------------------------------------------------------

resource "aws_lb" "this" {
  #checkov:skip=CKV_AWS_150:deletion protection would stop `terraform destroy`; the load balancer holds no data and is recreated in minutes
  #checkov:skip=CKV_AWS_91:access logs need a log bucket with an ELB delivery policy; the gateway logs every request itself (CloudWatch, /ecs/<project>-gateway)
  #checkov:skip=CKV2_AWS_28:no WAF by default (cost per rule and request); the gateway authenticates every request, rate-limits per key and per address, and a web ACL can be associated later
  name                       = local.prefix
  internal                   = false
  load_balancer_type         = "application"
  security_groups            = [aws_security_group.alb.id]
  subnets                    = var.subnet_ids
  drop_invalid_header_fields = true
  idle_timeout               = 60
  enable_http2               = true
}

resource "aws_lb_target_group" "this" {
  name                 = local.prefix
  port                 = local.port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = var.shutdown_timeout_seconds + 5

  # /readyz: 200 while the database answers and every migration is applied. When ECS stops
  # a task it first deregisters it and waits this delay (MLGW_SHUTDOWN_TIMEOUT + 5 s, as
  # README.md's "Operations" asks), then sends SIGTERM.
  health_check {
    path                = "/readyz"
    protocol            = "HTTP"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.tls_policy
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }
}

resource "aws_lb_listener" "http" {
  #checkov:skip=CKV_AWS_2:this listener only redirects to HTTPS (301)
  #checkov:skip=CKV_AWS_103:this listener only redirects to HTTPS; TLS is on aws_lb_listener.https
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_route53_record" "this" {
  count = var.route53_zone_id == null ? 0 : 1

  zone_id = var.route53_zone_id
  name    = var.domain_name
  type    = "A"

  alias {
    name                   = aws_lb.this.dns_name
    zone_id                = aws_lb.this.zone_id
    evaluate_target_health = true
  }
}

#!/usr/bin/env python3
"""test_deploy_plan.py PLAN.json — deploy/'s plan (terraform show -json of the deploy_plan test,
made with terraform.tfvars.example through the stand-in providers) holds what the original
pipeline asks of each service, with the values the variables give.

    test_deploy_plan.py PLAN.json     check the plan; every requirement that fails is one line
    test_deploy_plan.py --selftest PLAN.json   each rule, on the plan with one fact broken, reports it

Values that only AWS knows (ARNs, IDs) are unknown in the plan; a rule on such a value asks only
that it is set. The IAM policy documents are data sources whose result is a stand-in offline, but
their statements (effects, actions, conditions) are in the plan as written and are checked.
"""
import copy
import json
import sys

GPU_FAMILIES = ("g4dn", "g5")
CPU_FAMILIES = ("t3", "m5")
IMAGES = ("ml-python-slim", "ml-python", "ml-gateway")
SEED_OUTPUTS = ("trigger_events_topic_arn", "ml_input_bucket", "trigger_dlq_url", "monitor_dlq_url")


class Plan:
    def __init__(self, doc):
        self.doc = doc
        self.vars = {k: v.get("value") for k, v in doc.get("variables", {}).items()}
        self.changes = [c for c in doc.get("resource_changes", []) if c.get("mode") == "managed"]
        self.reads = [c for c in doc.get("resource_changes", []) if c.get("mode") == "data"]

    def policy_statements(self):
        """(address, statement) of every aws_iam_policy_document, as configured."""
        return [(c["address"], st) for c in self.reads if c["type"] == "aws_iam_policy_document"
                for st in ((c["change"]["after"] or {}).get("statement") or [])]

    def of_type(self, rtype):
        return [(c["address"], c["change"]["after"] or {}, c["change"].get("after_unknown") or {})
                for c in self.changes if c["type"] == rtype]

    def outputs(self):
        return self.doc.get("output_changes", {})


def key_of(address):
    """The for_each key of an address (`module.x.t.n["gpu"]` -> "gpu"), or None."""
    if address.endswith('"]'):
        return address[address.rindex('["') + 2:-2]
    return None


def is_set(after, unknown, name):
    return after.get(name) not in (None, "", []) or unknown.get(name) is True


def first(value):
    return value[0] if isinstance(value, list) and value else {}


def rule_compute_environments(p):
    out = []
    envs = {key_of(a): (a, after) for a, after, _ in p.of_type("aws_batch_compute_environment")}
    if set(envs) != {"gpu", "cpu"}:
        return [f"compute environments: one per compute type (gpu, cpu) by for_each, found {sorted(map(str, envs))}"]
    for kind, families in (("gpu", GPU_FAMILIES), ("cpu", CPU_FAMILIES)):
        addr, after = envs[kind]
        cr = first(after.get("compute_resources"))
        spot = p.vars.get(f"ml_{kind}_use_spot_instances")
        if cr.get("min_vcpus") != 0:
            out.append(f"{addr}: min_vcpus {cr.get('min_vcpus')}, expected 0 (scale to zero)")
        want_max = p.vars.get(f"ml_{kind}_max_vcpus")
        if want_max is not None and cr.get("max_vcpus") != want_max:
            out.append(f"{addr}: max_vcpus {cr.get('max_vcpus')}, expected var.ml_{kind}_max_vcpus ({want_max})")
        types = cr.get("instance_type") or []
        if not types or any(not str(t).split(".")[0] in families for t in types):
            out.append(f"{addr}: instance types {types}, expected the {'/'.join(families)} families")
        want_type, want_alloc = (("SPOT", "SPOT_PRICE_CAPACITY_OPTIMIZED") if spot
                                 else ("EC2", "BEST_FIT_PROGRESSIVE"))
        if (cr.get("type"), cr.get("allocation_strategy")) != (want_type, want_alloc):
            out.append(f"{addr}: {cr.get('type')}/{cr.get('allocation_strategy')}, expected "
                       f"{want_type}/{want_alloc} (ml_{kind}_use_spot_instances = {spot})")
        image = first(cr.get("ec2_configuration")).get("image_type") or ""
        if kind == "gpu" and "NVIDIA" not in image:
            out.append(f"{addr}: image_type {image!r}, expected an ECS GPU (NVIDIA) AMI")
    return out


def rule_job_queues(p):
    out = []
    queues = p.of_type("aws_batch_job_queue")
    if sorted(key_of(a) or "" for a, _, _ in queues) != ["cpu", "gpu"]:
        out.append(f"job queues: one per compute type, found {[a for a, _, _ in queues]}")
    for addr, after, _ in queues:
        guards = [g for g in after.get("job_state_time_limit_action") or []
                  if g.get("state") == "RUNNABLE" and g.get("action") == "CANCEL"]
        if not guards:
            out.append(f"{addr}: no job_state_time_limit_action cancelling jobs stuck in RUNNABLE")
    return out


def rule_job_definitions(p):
    out = []
    defs = p.of_type("aws_batch_job_definition")
    if sorted(key_of(a) or "" for a, _, _ in defs) != ["cpu", "gpu"]:
        out.append(f"job definitions: one per compute type, found {[a for a, _, _ in defs]}")
    for addr, after, _ in defs:
        rules = first(after.get("retry_strategy")).get("evaluate_on_exit") or []
        retry = [r for r in rules if r.get("action", "").upper() == "RETRY"
                 and (r.get("on_status_reason") or "").startswith("Host EC2")]
        catch_all = [r for r in rules if r.get("action", "").upper() == "EXIT"
                     and "*" in (r.get("on_reason"), r.get("on_status_reason"), r.get("on_exit_code"))]
        if not retry or not catch_all:
            out.append(f"{addr}: retry_strategy must retry on `Host EC2*` and exit on the rest")
        if not first(after.get("timeout")).get("attempt_duration_seconds"):
            out.append(f"{addr}: no timeout.attempt_duration_seconds")
    groups = [after.get("name") for _, after, _ in p.of_type("aws_cloudwatch_log_group")]
    want = f"/aws/batch/{p.vars.get('project_name')}-ml-jobs"
    if want not in groups:
        out.append(f"no log group {want} for the jobs (found {groups})")
    return out


def rule_network(p):
    out = []
    subnets = [(a, after) for a, after, _ in p.of_type("aws_subnet")]
    zones = {after.get("availability_zone") for _, after in subnets}
    if len(subnets) < 2 or len(zones) < 2:
        out.append(f"vpc: {len(subnets)} subnet(s) in {len(zones)} zone(s), expected two zones at least")
    out += [f"{a}: map_public_ip_on_launch is not true" for a, after in subnets
            if after.get("map_public_ip_on_launch") is not True]
    if not p.of_type("aws_internet_gateway"):
        out.append("vpc: no internet gateway")
    out += [f"{a}: a NAT gateway (the pipeline runs in public subnets, without NAT)"
            for a, _, _ in p.of_type("aws_nat_gateway")]
    if not any(after.get("vpc_endpoint_type") == "Gateway"
               and str(after.get("service_name", "")).endswith(".s3")
               for _, after, _ in p.of_type("aws_vpc_endpoint")):
        out.append("vpc: no S3 gateway endpoint")
    for addr, after, unknown in p.of_type("aws_vpc_security_group_ingress_rule"):
        if addr.startswith("module.gateway"):
            continue  # rule_gateway_network
        if after.get("cidr_ipv4") or after.get("cidr_ipv6"):
            out.append(f"{addr}: ingress from an address range; only security groups may reach in")
        elif after.get("from_port") != 2049 or after.get("to_port") != 2049:
            out.append(f"{addr}: ingress on {after.get('from_port')}-{after.get('to_port')}, only NFS (2049)")
        elif not is_set(after, unknown, "referenced_security_group_id"):
            out.append(f"{addr}: NFS ingress without a source security group")
    for addr, after, _ in p.of_type("aws_security_group"):
        if after.get("ingress"):
            out.append(f"{addr}: inline ingress rules")
    return out


def rule_topics(p):
    out = []
    topics = p.of_type("aws_sns_topic")
    if len(topics) < 2:
        out.append(f"sns: {len(topics)} topic(s), expected the trigger and the notifications topics")
    out += [f"{a}: not encrypted (kms_master_key_id)" for a, after, unknown in topics
            if not is_set(after, unknown, "kms_master_key_id")]
    if len(p.of_type("aws_sns_topic_policy")) < len(topics):
        out.append("sns: a topic without its topic policy")
    emails = {after.get("endpoint") for _, after, _ in p.of_type("aws_sns_topic_subscription")
              if after.get("protocol") == "email"}
    for e in p.vars.get("notification_emails") or []:
        if e not in emails:
            out.append(f"sns: no email subscription for {e}")
    return out


def rule_buckets(p):
    out = []
    buckets = {key_of(a) for a, _, _ in p.of_type("aws_s3_bucket")}
    if not {"input", "output", "models"} <= buckets:
        out.append(f"s3: buckets {sorted(map(str, buckets))}, expected input, output and models")
    by_type = {t: {key_of(a): after for a, after, _ in p.of_type(t)} for t in (
        "aws_s3_bucket_public_access_block", "aws_s3_bucket_ownership_controls",
        "aws_s3_bucket_server_side_encryption_configuration", "aws_s3_bucket_policy",
        "aws_s3_bucket_lifecycle_configuration")}
    flags = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    for b in sorted(map(str, buckets)):
        pab = by_type["aws_s3_bucket_public_access_block"].get(b)
        if not pab or not all(pab.get(f) is True for f in flags):
            out.append(f"s3 {b}: public access not blocked (all four flags)")
        own = by_type["aws_s3_bucket_ownership_controls"].get(b)
        if not own or first(own.get("rule")).get("object_ownership") != "BucketOwnerEnforced":
            out.append(f"s3 {b}: object ownership is not BucketOwnerEnforced")
        for t, what in (("aws_s3_bucket_server_side_encryption_configuration", "encryption"),
                        ("aws_s3_bucket_policy", "bucket policy (TLS only)")):
            if b not in by_type[t]:
                out.append(f"s3 {b}: no {what}")
    days = p.vars.get("output_expiration_days")
    rules = (by_type["aws_s3_bucket_lifecycle_configuration"].get("output") or {}).get("rule") or []
    if not any(first(r.get("expiration")).get("days") == days for r in rules if r.get("status") == "Enabled"):
        out.append(f"s3 output: no enabled lifecycle rule expiring objects after var.output_expiration_days ({days})")
    return out


def rule_efs(p):
    out = []
    fss = p.of_type("aws_efs_file_system")
    if len(fss) != 1:
        return [f"efs: {len(fss)} file systems, expected one"]
    addr, after, _ = fss[0]
    if after.get("encrypted") is not True:
        out.append(f"{addr}: not encrypted")
    if after.get("throughput_mode") != "elastic":
        out.append(f"{addr}: throughput_mode {after.get('throughput_mode')!r}, expected elastic")
    if len(p.of_type("aws_efs_mount_target")) != len(p.of_type("aws_subnet")):
        out.append("efs: not one mount target per subnet")
    if not any(first(after.get("root_directory")).get("path") == "/models"
               for _, after, _ in p.of_type("aws_efs_access_point")):
        out.append("efs: no access point for /models")
    return out


def rule_registries(p):
    out = []
    repos = {key_of(a): (a, after) for a, after, _ in p.of_type("aws_ecr_repository")}
    for image in IMAGES:
        if image not in repos:
            out.append(f"ecr: no repository for {image}")
            continue
        addr, after = repos[image]
        if first(after.get("image_scanning_configuration")).get("scan_on_push") is not True:
            out.append(f"{addr}: no scan on push")
    if {key_of(a) for a, _, _ in p.of_type("aws_ecr_lifecycle_policy")} != set(repos):
        out.append("ecr: a repository without its lifecycle policy")
    return out


def rule_dispatcher(p):
    out = []
    functions = [f for f in p.of_type("aws_lambda_function") if f[0].startswith("module.lambda.")]
    if not any(str(after.get("runtime", "")).startswith("python3") for _, after, _ in functions):
        out.append("lambda: no Python dispatcher function")
    if p.vars.get("enable_monitor") is False and len(functions) != 1:
        out.append(f"lambda: {len(functions)} functions with enable_monitor = false, expected the dispatcher only")
    if not any(after.get("protocol") == "lambda" for _, after, _ in p.of_type("aws_sns_topic_subscription")):
        out.append("lambda: the dispatcher is not subscribed to a topic")
    if not any(after.get("principal") == "sns.amazonaws.com" for _, after, _ in p.of_type("aws_lambda_permission")):
        out.append("lambda: SNS may not invoke the dispatcher")
    if not p.of_type("aws_sqs_queue"):
        out.append("lambda: no dead-letter queue")
    groups = [after for _, after, _ in p.of_type("aws_cloudwatch_log_group")]
    if not all(g.get("retention_in_days") for g in groups):
        out.append("logs: a log group without retention")
    return out


def rule_outputs(p):
    out = [f"output {name} missing (a name the original pipeline has)" for name in SEED_OUTPUTS
           if name not in p.outputs()]
    env = p.outputs().get("gateway_env", {}).get("change", p.outputs().get("gateway_env", {}))
    names = set((env.get("after") or {})) | set((env.get("after_unknown") or {}) if isinstance(
        env.get("after_unknown"), dict) else {})
    if not names:
        out.append("output gateway_env missing or empty")
    out += [f"gateway_env: {n} is not a gateway setting (MLGW_*, ML_*, AWS_REGION)" for n in sorted(names)
            if not (n.startswith(("MLGW_", "ML_")) or n == "AWS_REGION")]
    return out


def tls_only(statement):
    return statement.get("effect") == "Deny" and any(
        c.get("variable") == "aws:SecureTransport" and c.get("values") == ["false"]
        for c in statement.get("condition") or [])


def rule_policies(p):
    out = []
    statements = p.policy_statements()
    for addr, st in statements:
        if st.get("effect", "Allow") in (None, "Allow"):
            broad = [a for a in st.get("actions") or [] if a == "*" or a.endswith(":*")]
            if broad:
                out.append(f"{addr}: statement {st.get('sid')!r} allows {broad} (least privilege: name the actions)")
    buckets = {key_of(a) for a, _, _ in p.of_type("aws_s3_bucket")}
    for b in sorted(map(str, buckets)):
        if not any(key_of(a) == b and tls_only(st) and any(x.startswith("s3:") for x in st.get("actions") or [])
                   for a, st in statements):
            out.append(f"s3 {b}: its policy does not deny requests without TLS (aws:SecureTransport)")
    return out


# ---- the gateway on AWS (modules/gateway, enable_gateway) ----------------------------------

# Settings the gateway marks (secret) in its table, and AWS's own credentials: never in a
# task's plain environment. tests/deploy/test_gateway_task.py checks the same against the
# binary's table itself.
SECRET_SETTINGS = {"DATABASE_URL", "MLGW_DATABASE_PASSWORD", "MLGW_CALLBACK_SECRET",
                   "MLGW_WEBHOOK_SECRET", "MLGW_SMTP_PASSWORD", "MLGW_LOCAL_JOB_AWS_SECRET_ACCESS_KEY",
                   "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID"}
# Calls that have no resource-level permissions: the only ones a "*" resource may carry.
NO_RESOURCE_ACTIONS = {"batch:DescribeJobs", "batch:ListJobs", "ecr:GetAuthorizationToken",
                       "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
                       "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
                       "xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def gateway_enabled(p):
    return p.vars.get("enable_gateway") is not False


def gw(p, rtype):
    return [(a, after, unknown) for a, after, unknown in p.of_type(rtype) if a.startswith("module.gateway")]


def output_value(p, name):
    change = p.outputs().get(name) or {}
    after = change.get("after")
    unknown = change.get("after_unknown")
    return after, unknown


def task_names(p):
    """(environment names, secret names) of the gateway task, from the plan's outputs."""
    env, env_unknown = output_value(p, "gateway_task_environment")
    names = set(env or {}) | set(env_unknown if isinstance(env_unknown, dict) else {})
    secrets, _ = output_value(p, "gateway_task_secret_names")
    return names, set(secrets or []), env or {}


def rule_gateway_present(p):
    if not gateway_enabled(p):
        return [f"{c['address']}: a gateway resource with enable_gateway = false"
                for c in p.changes if c["address"].startswith("module.gateway")]
    out = []
    for rtype in ("aws_ecs_cluster", "aws_ecs_service", "aws_ecs_task_definition", "aws_lb",
                  "aws_db_instance", "aws_cloudwatch_event_rule", "aws_appautoscaling_policy"):
        if not gw(p, rtype):
            out.append(f"gateway: no {rtype}")
    url, _ = output_value(p, "gateway_url")
    if not (isinstance(url, str) and url == f"https://{p.vars.get('gateway_domain_name')}"):
        out.append(f"output gateway_url is {url!r}, expected https://<gateway_domain_name>")
    for name in ("gateway_callback_dlq_url", "gateway_create_admin_key_command"):
        if name not in p.outputs():
            out.append(f"output {name} missing")
    return out


def rule_gateway_network(p):
    out = []
    sgs = {a.rsplit(".", 1)[-1]: a for a, _, _ in gw(p, "aws_security_group")}
    if gateway_enabled(p) and set(sgs) != {"alb", "tasks", "database"}:
        out.append(f"gateway: security groups {sorted(sgs)}, expected alb, tasks and database")
    cidrs = set(p.vars.get("gateway_ingress_cidrs") or [])
    for addr, after, unknown in gw(p, "aws_vpc_security_group_ingress_rule"):
        port = (after.get("from_port"), after.get("to_port"))
        from_sg = is_set(after, unknown, "referenced_security_group_id")
        if ".alb[" in addr:
            if port not in ((80, 80), (443, 443)) or after.get("cidr_ipv4") not in cidrs:
                out.append(f"{addr}: load balancer ingress {port} from {after.get('cidr_ipv4')}, "
                           f"expected 80/443 from gateway_ingress_cidrs")
        elif addr.endswith("tasks_from_alb"):
            if port != (8080, 8080) or not from_sg or after.get("cidr_ipv4"):
                out.append(f"{addr}: tasks reachable on {port} from {after.get('cidr_ipv4') or 'a group'}, "
                           "expected 8080 from the load balancer's group only")
        elif addr.endswith("database_from_tasks"):
            if port != (5432, 5432) or not from_sg or after.get("cidr_ipv4"):
                out.append(f"{addr}: PostgreSQL reachable on {port}, expected 5432 from the tasks' group only")
        else:
            out.append(f"{addr}: an ingress rule the gateway does not need")
    if gateway_enabled(p) and not any(key_of(a) == "gateway" for a, _, _ in
                                      p.of_type("aws_vpc_security_group_ingress_rule")
                                      if a.startswith("module.vpc.")):
        out.append("efs: the gateway's tasks may not mount the model cache (no NFS rule for them)")
    return out


def rule_gateway_load_balancer(p):
    out = []
    listeners = {a.rsplit(".", 1)[-1]: after for a, after, _ in gw(p, "aws_lb_listener")}
    https = listeners.get("https") or {}
    if https.get("protocol") != "HTTPS" or https.get("port") != 443:
        out.append("gateway: no HTTPS listener on 443")
    policy = str(https.get("ssl_policy") or "")
    if not policy.startswith("ELBSecurityPolicy-TLS13-"):
        out.append(f"gateway: HTTPS listener's ssl_policy {policy!r}, expected a TLS 1.3 policy (ELBSecurityPolicy-TLS13-*)")
    if https and https.get("certificate_arn") != p.vars.get("gateway_certificate_arn"):
        out.append("gateway: the HTTPS listener does not use gateway_certificate_arn")
    redirect = first(first((listeners.get("http") or {}).get("default_action")).get("redirect"))
    if redirect.get("protocol") != "HTTPS" or redirect.get("status_code") != "HTTP_301":
        out.append("gateway: HTTP does not redirect to HTTPS (301)")
    env = task_names(p)[2]
    shutdown = int(env.get("MLGW_SHUTDOWN_TIMEOUT") or 10)
    for addr, after, _ in gw(p, "aws_lb_target_group"):
        hc = first(after.get("health_check"))
        if hc.get("path") != "/readyz":
            out.append(f"{addr}: health check path {hc.get('path')!r}, expected /readyz")
        if int(after.get("deregistration_delay") or 300) < shutdown:
            out.append(f"{addr}: deregistration_delay {after.get('deregistration_delay')} below "
                       f"MLGW_SHUTDOWN_TIMEOUT ({shutdown})")
    for addr, after, _ in gw(p, "aws_lb"):
        if after.get("drop_invalid_header_fields") is not True:
            out.append(f"{addr}: drop_invalid_header_fields is not true")
    return out


def rule_gateway_database(p):
    out = []
    for addr, after, _ in gw(p, "aws_db_instance"):
        want = {"engine": "postgres", "storage_encrypted": True, "publicly_accessible": False,
                "manage_master_user_password": True,
                "deletion_protection": p.vars.get("gateway_db_deletion_protection", True),
                "multi_az": p.vars.get("gateway_db_multi_az", True)}
        for k, v in want.items():
            if after.get(k) != v:
                out.append(f"{addr}: {k} is {after.get(k)!r}, expected {v!r}")
        if not str(after.get("engine_version") or "").startswith("16"):
            out.append(f"{addr}: engine_version {after.get('engine_version')!r}, expected PostgreSQL 16")
        if not (after.get("backup_retention_period") or 0) >= 1:
            out.append(f"{addr}: no automated backups (backup_retention_period)")
        if after.get("skip_final_snapshot") is not False:
            out.append(f"{addr}: skip_final_snapshot is not false")
    groups = gw(p, "aws_db_parameter_group")
    if gateway_enabled(p) and not any(
            {"name": "rds.force_ssl", "value": "1"}.items() <= prm.items()
            for _, after, _ in groups for prm in after.get("parameter") or []):
        out.append("gateway: no parameter group setting rds.force_ssl = 1")
    return out


def rule_gateway_task(p):
    if not gateway_enabled(p):
        return []
    out = []
    names, secrets, env = task_names(p)
    if not names:
        return ["output gateway_task_environment missing or empty"]
    leaked = sorted(names & SECRET_SETTINGS)
    if leaked:
        out.append(f"gateway task: secrets in the plain environment: {leaked}")
    for need in ("DATABASE_URL", "MLGW_DATABASE_PASSWORD", "MLGW_CALLBACK_SECRET", "MLGW_WEBHOOK_SECRET"):
        if need not in secrets:
            out.append(f"gateway task: {need} is not an ECS secret")
    want = {"MLGW_LISTEN": "0.0.0.0:8080", "MLGW_CACHE_DIR": "/opt/models", "MLGW_CACHE_DISPATCH": "batch",
            "MLGW_CALLBACK_HEADER": "X-Callback-Key"}
    for k, v in want.items():
        if env.get(k) != v:
            out.append(f"gateway task: {k} is {env.get(k)!r}, expected {v!r}")
    for addr, after, _ in gw(p, "aws_ecs_service"):
        cb = first(after.get("deployment_circuit_breaker"))
        if cb.get("enable") is not True or cb.get("rollback") is not True:
            out.append(f"{addr}: no deployment circuit breaker with rollback")
        if after.get("desired_count") != p.vars.get("gateway_desired_count", 2):
            out.append(f"{addr}: desired_count {after.get('desired_count')}, expected gateway_desired_count")
    for addr, after, _ in gw(p, "aws_appautoscaling_policy"):
        spec = first(first(after.get("target_tracking_scaling_policy_configuration")).get(
            "predefined_metric_specification"))
        if spec.get("predefined_metric_type") != "ECSServiceAverageCPUUtilization":
            out.append(f"{addr}: not CPU target tracking")
    for addr, after, _ in gw(p, "aws_ecs_task_definition"):
        efs = [first(v.get("efs_volume_configuration")) for v in after.get("volume") or []]
        if not any(e.get("transit_encryption") == "ENABLED" and first(e.get("authorization_config")).get("iam") == "ENABLED"
                   for e in efs):
            out.append(f"{addr}: the model cache is not mounted with TLS and IAM authorisation")
    return out


def rule_gateway_task_role(p):
    out = []
    for addr, st in p.policy_statements():
        if not addr.startswith("module.gateway"):
            continue
        if st.get("effect", "Allow") not in (None, "Allow"):
            continue
        actions = set(st.get("actions") or [])
        if any(a.lower() == "iam:passrole" for a in actions):
            out.append(f"{addr}: statement {st.get('sid')!r} allows iam:PassRole (jobs keep their own role)")
        if (st.get("resources") or []) == ["*"] and ".key" not in addr:
            extra = sorted(actions - NO_RESOURCE_ACTIONS)
            if extra:
                out.append(f"{addr}: statement {st.get('sid')!r} allows {extra} on every resource")
    task = [st for a, st in p.policy_statements() if a == "module.gateway[0].data.aws_iam_policy_document.task"]
    if gateway_enabled(p):
        granted = {a for st in task for a in st.get("actions") or []}
        for need in ("batch:SubmitJob", "batch:DescribeJobs", "batch:ListJobs", "batch:CancelJob",
                     "batch:TerminateJob", "batch:TagResource", "sns:Publish", "s3:GetObject",
                     "logs:GetLogEvents", "elasticfilesystem:ClientMount"):
            if need not in granted:
                out.append(f"gateway task role: {need} is not granted")
        if "elasticfilesystem:ClientWrite" in granted:
            out.append("gateway task role: ClientWrite on the model cache (it is mounted read-only)")
    return out


def rule_gateway_events(p):
    if not gateway_enabled(p):
        return []
    out = []
    rules = gw(p, "aws_cloudwatch_event_rule")
    patterns = [json.loads(after.get("event_pattern") or "{}") for _, after, _ in rules
                if isinstance(after.get("event_pattern"), str)]
    if not any(pt.get("source") == ["aws.batch"] and pt.get("detail-type") == ["Batch Job State Change"]
               and (pt.get("detail") or {}).get("jobQueue") for pt in patterns) and not any(
            unknown.get("event_pattern") for _, _, unknown in rules):
        out.append("gateway: no EventBridge rule for aws.batch 'Batch Job State Change' on the queues")
    conns = gw(p, "aws_cloudwatch_event_connection")
    if not any(after.get("authorization_type") == "API_KEY"
               and first(first(after.get("auth_parameters")).get("api_key")).get("key") == "X-Callback-Key"
               for _, after, _ in conns):
        out.append("gateway: no EventBridge connection with the X-Callback-Key API key")
    dests = gw(p, "aws_cloudwatch_event_api_destination")
    if not any(str(after.get("invocation_endpoint", "")).startswith("https://")
               and str(after.get("invocation_endpoint", "")).endswith("/events/batch")
               and after.get("invocation_rate_limit_per_second") for _, after, _ in dests):
        out.append("gateway: no API destination to https://…/events/batch with a rate limit")
    for addr, after, unknown in gw(p, "aws_cloudwatch_event_target"):
        if not first(after.get("retry_policy")).get("maximum_retry_attempts"):
            out.append(f"{addr}: no retry policy")
        if not after.get("dead_letter_config"):
            out.append(f"{addr}: no dead-letter queue")
    return out


RULES = [rule_compute_environments, rule_job_queues, rule_job_definitions, rule_network,
         rule_topics, rule_buckets, rule_efs, rule_registries, rule_dispatcher, rule_outputs,
         rule_policies, rule_gateway_present, rule_gateway_network, rule_gateway_load_balancer,
         rule_gateway_database, rule_gateway_task, rule_gateway_task_role, rule_gateway_events]


def check(doc):
    p = Plan(doc)
    return [problem for rule in RULES for problem in rule(p)]


def edit(doc, address, fn):
    for c in doc["resource_changes"]:
        if c["address"] == address:
            fn(c["change"]["after"])
            return
    raise KeyError(address)


def edit_data(doc, address, fn):
    for c in doc["resource_changes"]:
        if c["address"] == address and c.get("mode") == "data":
            fn(c["change"]["after"])
            return
    raise KeyError(address)


def selftest(doc):
    """Each case breaks one fact of a good plan; the named problem must be reported."""
    gpu_ce = 'module.batch.aws_batch_compute_environment.this["gpu"]'
    cases = [
        ("min_vcpus 2, expected 0", lambda d: edit(d, gpu_ce, lambda a: a["compute_resources"][0].update(min_vcpus=2))),
        ("expected the g4dn/g5 families", lambda d: edit(d, gpu_ce, lambda a: a["compute_resources"][0].update(instance_type=["p3"]))),
        ("expected an ECS GPU (NVIDIA) AMI", lambda d: edit(d, gpu_ce, lambda a: a["compute_resources"][0]["ec2_configuration"][0].update(image_type="ECS_AL2023"))),
        ("cancelling jobs stuck in RUNNABLE", lambda d: edit(d, 'module.batch.aws_batch_job_queue.this["cpu"]', lambda a: a.update(job_state_time_limit_action=[]))),
        ("must retry on `Host EC2*`", lambda d: edit(d, 'module.batch.aws_batch_job_definition.this["gpu"]', lambda a: a["retry_strategy"][0].update(evaluate_on_exit=[]))),
        ("a NAT gateway", lambda d: d["resource_changes"].append({"address": "module.vpc.aws_nat_gateway.x", "mode": "managed", "type": "aws_nat_gateway", "change": {"after": {}}})),
        ("public access not blocked", lambda d: edit(d, 'module.s3.aws_s3_bucket_public_access_block.this["models"]', lambda a: a.update(block_public_policy=False))),
        ("throughput_mode 'bursting', expected elastic", lambda d: edit(d, "module.efs.aws_efs_file_system.this", lambda a: a.update(throughput_mode="bursting"))),
        ("no repository for ml-gateway", lambda d: d.update(resource_changes=[c for c in d["resource_changes"] if c["address"] != 'module.ecr.aws_ecr_repository.this["ml-gateway"]'])),
        ("output trigger_dlq_url missing", lambda d: d["output_changes"].pop("trigger_dlq_url")),
        ("allows ['s3:*']", lambda d: edit_data(d, "module.batch.data.aws_iam_policy_document.job", lambda a: a["statement"][0].update(actions=["s3:*"]))),
        ("s3 output: its policy does not deny requests without TLS", lambda d: edit_data(d, 'module.s3.data.aws_iam_policy_document.bucket["output"]', lambda a: a["statement"][0].update(condition=[]))),
        ("expected 8080 from the load balancer's group only", lambda d: edit(d, "module.gateway[0].aws_vpc_security_group_ingress_rule.tasks_from_alb", lambda a: a.update(cidr_ipv4="0.0.0.0/0"))),
        ("expected a TLS 1.3 policy", lambda d: edit(d, "module.gateway[0].aws_lb_listener.https", lambda a: a.update(ssl_policy="ELBSecurityPolicy-2016-08"))),
        ("health check path '/healthz', expected /readyz", lambda d: edit(d, "module.gateway[0].aws_lb_target_group.this", lambda a: a["health_check"][0].update(path="/healthz"))),
        ("deletion_protection is False", lambda d: edit(d, "module.gateway[0].aws_db_instance.this", lambda a: a.update(deletion_protection=False))),
        ("storage_encrypted is False", lambda d: edit(d, "module.gateway[0].aws_db_instance.this", lambda a: a.update(storage_encrypted=False))),
        ("no parameter group setting rds.force_ssl = 1", lambda d: edit(d, "module.gateway[0].aws_db_parameter_group.this", lambda a: a.update(parameter=[]))),
        ("secrets in the plain environment: ['MLGW_CALLBACK_SECRET']", lambda d: d["output_changes"]["gateway_task_environment"]["after"].update(MLGW_CALLBACK_SECRET="x")),
        ("DATABASE_URL is not an ECS secret", lambda d: d["output_changes"]["gateway_task_secret_names"].update(after=["MLGW_CALLBACK_SECRET"])),
        ("no deployment circuit breaker with rollback", lambda d: edit(d, "module.gateway[0].aws_ecs_service.this", lambda a: a["deployment_circuit_breaker"][0].update(rollback=False))),
        ("allows ['sns:Publish'] on every resource", lambda d: edit_data(d, "module.gateway[0].data.aws_iam_policy_document.task", lambda a: [st.update(resources=["*"]) for st in a["statement"] if st.get("sid") == "PublishToThePipelinesTopics"])),
        ("allows iam:PassRole", lambda d: edit_data(d, "module.gateway[0].data.aws_iam_policy_document.task", lambda a: a["statement"][0]["actions"].append("iam:PassRole"))),
        ("no API destination to https://…/events/batch", lambda d: edit(d, "module.gateway[0].aws_cloudwatch_event_api_destination.gateway", lambda a: a.update(invocation_endpoint="http://ml.example.com/events/batch"))),
        ("output gateway_url is None", lambda d: d["output_changes"]["gateway_url"].update(after=None)),
        ("no dead-letter queue", lambda d: edit(d, "module.gateway[0].aws_cloudwatch_event_target.gateway", lambda a: a.update(dead_letter_config=[]))),
    ]
    failures = check(doc)
    if failures:
        return [f"the plan itself fails: {f}" for f in failures]
    bad = []
    for want, breaker in cases:
        broken = copy.deepcopy(doc)
        breaker(broken)
        got = check(broken)
        if not any(want in g for g in got):
            bad.append(f"selftest: breaking it did not report '{want}' (got {got})")
    return bad


def main():
    if len(sys.argv) != 3 if sys.argv[1:2] == ["--selftest"] else len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[-1], encoding="utf-8") as f:
        doc = json.load(f)
    problems = selftest(doc) if sys.argv[1] == "--selftest" else check(doc)
    for problem in problems:
        print(problem)
    if problems:
        print(f"test_deploy_plan: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"test_deploy_plan: {'every rule reports its broken fact' if sys.argv[1] == '--selftest' else 'the plan holds every requirement'} "
          f"({len(RULES)} rules)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

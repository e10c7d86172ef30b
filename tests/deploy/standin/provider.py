"""Stand-in providers (hashicorp/aws, hashicorp/archive) for offline `terraform validate` and
`terraform plan`.

Each speaks Terraform's plugin protocol 6 through PyPI's `tf` framework (its gRPC server, TLS
handshake and generated protocol buffers) and serves the real schema of its provider from
tests/deploy/schema/ (derived by scripts/tf-schema.py: hashicorp/aws 6.25.0, hashicorp/archive
2.7.1). What it does per call:

- GetProviderSchema: the provider, every resource and every data source, with their types;
- Validate*Config, ConfigureProvider: accept (value-level checks are the real provider's);
- PlanResourceChange: the configuration as written; every attribute the provider computes and
  the configuration leaves unset is planned unknown ("known after apply");
- ReadDataSource: the configuration plus fixed stand-in values for what the data source returns
  (a few chosen to be usable: three availability zones of the configured region, a 12-digit
  account, the `aws` partition, an IAM policy document's JSON);
- ApplyResourceChange and imports refuse: nothing is ever created.

The executables tests/deploy/tfcheck.py writes under build/ run `main(SCHEMA_FILE, SOURCE)`.
"""
import gzip
import hashlib
import json
import os
import sys

import grpc

import tf.provider
from tf import runner
from tf.gen import tfplugin_pb2 as pb
from tf.types import Unknown
from tf.utils import Diagnostics, read_dynamic_value, to_dynamic_value

SCHEMA_FILE = None  # set by main()
Block = pb.Schema.Block
Nested = pb.Schema.NestedBlock
NESTING = {"list": Nested.LIST, "single": Nested.SINGLE}
ACCOUNT = "123456789012"


def load_schema():
    with gzip.open(SCHEMA_FILE, "rt") as f:
        return json.load(f)


def schema_cache_path():
    """$TFCHECK_CACHE_DIR/<schema file>-<digest>.pb, or None without that variable."""
    cache_dir = os.environ.get("TFCHECK_CACHE_DIR")
    if not cache_dir:
        return None
    with open(SCHEMA_FILE, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    return os.path.join(cache_dir, f"{os.path.basename(SCHEMA_FILE)}-{digest}.pb")


def block_pb(block, top):
    attrs = []
    for name in sorted(block["attrs"]):
        ty, mode = block["attrs"][name]
        attrs.append(pb.Schema.Attribute(
            name=name, type=json.dumps(ty).encode(), required=mode == "required",
            optional=mode == "optional", computed=mode == "computed" or (top and mode == "optional")))
    nested = []
    for name in sorted(block["blocks"]):
        nesting, lo, hi, inner = block["blocks"][name]
        nested.append(Nested(type_name=name, block=block_pb(inner, False), nesting=NESTING[nesting],
                             min_items=lo if nesting != "single" else 0,
                             max_items=hi if nesting != "single" else 0))
    return Block(version=0, attributes=attrs, block_types=nested, description_kind=pb.PLAIN)


def placeholder(ty, name):
    """A known value of type `ty` for a data source's result attribute `name`."""
    if ty == "string":
        if name == "json" or name.endswith("_json"):
            return '{"Version":"2012-10-17","Statement":[]}'
        if name.endswith("arn"):
            return f"arn:aws:iam::{ACCOUNT}:stand-in/{name}"
        return f"stand-in-{name}"
    if ty == "number":
        return 0
    if ty == "bool":
        return False
    if ty == "dynamic":
        return None
    kind = ty[0]
    if kind in ("list", "set"):
        return []
    if kind == "map":
        return {}
    if kind == "object":
        return {k: placeholder(v, k) for k, v in ty[1].items()}
    return None


def data_source_result(type_name, block, config, region):
    out = dict(config)
    for name, (ty, mode) in block["attrs"].items():
        if mode != "required" and out.get(name) is None:
            out[name] = placeholder(ty, name)
    special = {
        "aws_availability_zones": {"names": [region + s for s in "abc"],
                                   "zone_ids": [f"{region}-az{i}" for i in (1, 2, 3)]},
        "aws_caller_identity": {"account_id": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root"},
        "aws_partition": {"partition": "aws", "dns_suffix": "amazonaws.com"},
        "aws_region": {"name": region, "region": region},
    }.get(type_name, {})
    for name, value in special.items():
        if name in block["attrs"] and block["attrs"][name][1] != "required":
            out[name] = value
    if "id" in block["attrs"]:
        out["id"] = config.get("id") or f"stand-in-{type_name}"
    return out


def plan_create(block, proposed):
    planned = dict(proposed)
    for name, (_, mode) in block["attrs"].items():
        if mode != "required" and planned.get(name) is None:
            planned[name] = Unknown
    return planned


class StandInServicer(tf.provider.ProviderServicer):
    """Implements the protocol from the schema alone (no per-resource classes)."""

    def __init__(self, app):
        super().__init__(app)
        self._schema = None
        self.region = "us-east-1"
        self._schema_pb = None

    @property
    def schema(self):
        if self._schema is None:
            self._schema = load_schema()
        return self._schema

    def _cached_schema_pb(self):
        """The encoded GetProviderSchema answer, kept under $TFCHECK_CACHE_DIR when set: Terraform
        starts the provider several times per command, and building the answer takes a while."""
        cache = schema_cache_path()
        if cache and os.path.exists(cache):
            resp = pb.GetProviderSchema.Response()
            with open(cache, "rb") as f:
                resp.ParseFromString(f.read())
            return resp
        resp = self._build_schema_pb()
        if cache:
            tmp = f"{cache}.{os.getpid()}"
            with open(tmp, "wb") as f:
                f.write(resp.SerializeToString())
            os.replace(tmp, cache)
        return resp

    def GetMetadata(self, request, context):
        return pb.GetMetadata.Response(server_capabilities=pb.ServerCapabilities(plan_destroy=True))

    def GetProviderSchema(self, request, context):
        if self._schema_pb is None:
            self._schema_pb = self._cached_schema_pb()
        return self._schema_pb

    def _build_schema_pb(self):
        empty = pb.Schema(block=Block(description_kind=pb.PLAIN))
        return pb.GetProviderSchema.Response(
            provider=pb.Schema(block=block_pb(self.schema["provider"], False)),
            provider_meta=empty,
            resource_schemas={k: pb.Schema(block=block_pb(v, True))
                              for k, v in self.schema["resource"].items()},
            data_source_schemas={k: pb.Schema(block=block_pb(v, True))
                                 for k, v in self.schema["data"].items()},
            server_capabilities=pb.ServerCapabilities(plan_destroy=True))

    def ValidateProviderConfig(self, request, context):
        return pb.ValidateProviderConfig.Response()

    def ValidateResourceConfig(self, request, context):
        return pb.ValidateResourceConfig.Response()

    def ValidateDataResourceConfig(self, request, context):
        return pb.ValidateDataResourceConfig.Response()

    def ConfigureProvider(self, request, context):
        config = read_dynamic_value(request.config) or {}
        if isinstance(config.get("region"), str):
            self.region = config["region"]
        return pb.ConfigureProvider.Response()

    def UpgradeResourceState(self, request, context):
        return pb.UpgradeResourceState.Response(
            upgraded_state=to_dynamic_value(json.loads(request.raw_state.json)))

    def ReadResource(self, request, context):
        return pb.ReadResource.Response(new_state=request.current_state)

    def PlanResourceChange(self, request, context):
        proposed = read_dynamic_value(request.proposed_new_state)
        prior = read_dynamic_value(request.prior_state)
        if proposed is None:
            return pb.PlanResourceChange.Response(planned_state=request.proposed_new_state)
        if prior is None:
            proposed = plan_create(self.schema["resource"][request.type_name], proposed)
        return pb.PlanResourceChange.Response(planned_state=to_dynamic_value(proposed))

    def ApplyResourceChange(self, request, context):
        diags = Diagnostics().add_error(
            "The stand-in aws provider never applies",
            "It serves the hashicorp/aws 6.25.0 schema for offline validate and plan only.")
        return pb.ApplyResourceChange.Response(diagnostics=diags.to_pb())

    def ImportResourceState(self, request, context):
        diags = Diagnostics().add_error("The stand-in aws provider cannot import")
        return pb.ImportResourceState.Response(diagnostics=diags.to_pb())

    def ReadDataSource(self, request, context):
        config = read_dynamic_value(request.config) or {}
        block = self.schema["data"][request.type_name]
        state = data_source_result(request.type_name, block, config, self.region)
        return pb.ReadDataSource.Response(state=to_dynamic_value(state))

    def GetFunctions(self, request, context):
        return pb.GetFunctions.Response()

    def CallFunction(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "no provider functions in the stand-in")


class StandInProvider:
    """What tf.runner asks of a provider object besides the servicer."""

    def __init__(self, source):
        self.source = source

    def full_name(self):
        return self.source


def main(schema_file, source):
    global SCHEMA_FILE
    SCHEMA_FILE = schema_file
    # tf.runner builds tf.provider.ProviderServicer(provider); serve the schema-driven one instead.
    tf.provider.ProviderServicer = StandInServicer
    runner.run_provider(StandInProvider(source), sys.argv)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

#!/usr/bin/env python3
"""tf-schema.py — derive the hashicorp/aws 6.25.0 schema from @cdktf/provider-aws's .jsii.

    scripts/tf-schema.py [--jsii PATH] [--out tests/deploy/schema/aws-6.25.0.json.gz] [--check]

--check writes nothing: it fails when the committed file differs from what the package gives.

Without --jsii the npm package @cdktf/provider-aws@21.22.1 (generated from hashicorp/aws 6.25.0)
is fetched with `npm pack` into build/tfschema/ (kept there: a second run reads the cache).

The output is the schema the offline Terraform checks of tests/deploy/ need, gzip-compressed JSON:

    {"provider_version": "6.25.0", "source": "@cdktf/provider-aws@21.22.1",
     "provider": BLOCK, "resource": {TYPE: BLOCK}, "data": {TYPE: BLOCK}}
    BLOCK = {"attrs": {NAME: [TYPE, MODE]}, "blocks": {NAME: [NESTING, MIN, MAX, BLOCK]}}

MODE is "required", "optional" (an input the provider fills when unset) or "computed" (output
only). TYPE is cty's JSON type notation ("string", ["list", "string"], ["object", {...}],
"dynamic"). NESTING is "list" or "single".

What the .jsii cannot say, and what is assumed instead: set-typed collections are lists (cdktf
gives both as arrays); a block of at most one item is a list of at most one (the SDK's way; only
`timeouts` is single); an input the provider also computes cannot be told from a plain optional one,
so every optional top-level input is taken as optional-and-computed. The five blocks cdktf types
as `any` (too deeply nested: quicksight definitions, wafv2 statements) become dynamic attributes.
"""
import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import tarfile

PKG = "@cdktf/provider-aws"
PKG_VERSION = "21.22.1"
PROVIDER_VERSION = "6.25.0"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, "build", "tfschema")
DEFAULT_OUT = os.path.join(ROOT, "tests", "deploy", "schema", f"aws-{PROVIDER_VERSION}.json.gz")

REPRESENTS = re.compile(
    r"Represents a \{@link https://registry\.terraform\.io/providers/hashicorp/aws/"
    + re.escape(PROVIDER_VERSION)
    + r"/docs(?:/(resources|data-sources)/\w+)? (aws_?\w*)\}"
)
ANCHOR = re.compile(r"#(\w+) \w+#\w+\}")
BLOCK_DOC = re.compile(r"^(\w+) block\.$")
PRIMITIVES = {"string": "string", "number": "number", "boolean": "bool", "any": "dynamic",
              "json": "dynamic", "date": "string"}
CDKTF_MAPS = {"cdktf.StringMap": ["map", "string"], "cdktf.NumberMap": ["map", "number"],
              "cdktf.BooleanMap": ["map", "bool"], "cdktf.AnyMap": ["map", "dynamic"],
              "cdktf.StringMapList": ["list", ["map", "string"]],
              "cdktf.NumberMapList": ["list", ["map", "number"]],
              "cdktf.BooleanMapList": ["list", ["map", "bool"]],
              "cdktf.AnyMapList": ["list", ["map", "dynamic"]],
              "cdktf.StringListList": ["list", ["list", "string"]],
              "cdktf.NumberListList": ["list", ["list", "number"]]}


def fetch_package():
    """The npm package's tarball, fetched once into build/tfschema/."""
    os.makedirs(CACHE, exist_ok=True)
    tgz = os.path.join(CACHE, f"cdktf-provider-aws-{PKG_VERSION}.tgz")
    if not os.path.exists(tgz):
        print(f"tf-schema: npm pack {PKG}@{PKG_VERSION}", file=sys.stderr)
        subprocess.run(["npm", "pack", "--silent", f"{PKG}@{PKG_VERSION}"], cwd=CACHE, check=True,
                       stdout=subprocess.DEVNULL)
    return tgz


def read_types(jsii_path):
    if jsii_path:
        with open(jsii_path, encoding="utf-8") as f:
            return json.load(f)["types"]
    with tarfile.open(fetch_package()) as tar:
        return json.load(tar.extractfile("package/.jsii"))["types"]


def snake(camel):
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", camel).lower()


class Deriver:
    def __init__(self, types):
        self.types = types
        self.unknown = set()

    def tf_name(self, prop):
        docs = prop.get("docs", {})
        text = docs.get("summary", "") + " " + docs.get("remarks", "")
        m = ANCHOR.search(text)
        if m:
            return m.group(1)
        m = BLOCK_DOC.match(docs.get("summary", ""))
        return m.group(1) if m else snake(prop["name"])

    @staticmethod
    def strip_resolvable(ty):
        """A union with cdktf.IResolvable is the other member (IResolvable alone is dynamic)."""
        if "union" in ty:
            rest = [t for t in ty["union"]["types"] if t.get("fqn") != "cdktf.IResolvable"]
            if len(rest) == 1:
                return rest[0]
            return {"primitive": "any"}
        return ty

    def struct_props(self, fqn):
        return self.types[fqn].get("properties", [])

    def input_type(self, ty):
        """cty type of an input value."""
        ty = self.strip_resolvable(ty)
        if "primitive" in ty:
            return PRIMITIVES[ty["primitive"]]
        if "collection" in ty:
            kind = "list" if ty["collection"]["kind"] == "array" else "map"
            return [kind, self.input_type(ty["collection"]["elementtype"])]
        fqn = ty["fqn"]
        if fqn == "cdktf.IResolvable":
            return "dynamic"
        if fqn in CDKTF_MAPS:
            return CDKTF_MAPS[fqn]
        if self.types.get(fqn, {}).get("datatype"):
            return ["object", {self.tf_name(p): self.input_type(p["type"])
                               for p in self.struct_props(fqn)}]
        self.unknown.add(fqn)
        return "dynamic"

    def output_type(self, ty):
        """cty type of a computed value: the getter's type (cdktf's List/Map/OutputReference classes)."""
        ty = self.strip_resolvable(ty)
        if "fqn" not in ty or ty["fqn"] in CDKTF_MAPS or ty["fqn"] == "cdktf.IResolvable":
            return self.input_type(ty)
        cls = self.types.get(ty["fqn"])
        if cls is None or cls.get("kind") != "class":
            return self.input_type(ty)
        getter = next((m for m in cls.get("methods", []) if m["name"] == "get"), None)
        if getter is not None:
            kind = "map" if getter["parameters"][0]["type"].get("primitive") == "string" else "list"
            return [kind, self.output_type(getter["returns"]["type"])]
        attrs = {}
        for p in cls.get("properties", []):
            if p.get("static") or p["name"].endswith("Input") or p["name"] in ("internalValue",
                                                                               "fqn", "creationStack"):
                continue
            if p.get("protected"):
                continue
            attrs[snake_or_doc(p)] = self.output_type(p["type"])
        return ["object", attrs]

    def block(self, fqn, top):
        out = {"attrs": {}, "blocks": {}}
        for p in self.struct_props(fqn):
            name = self.tf_name(p)
            ty = self.strip_resolvable(p["type"])
            optional = bool(p.get("optional"))
            if BLOCK_DOC.match(p.get("docs", {}).get("summary", "")) and "primitive" not in ty:
                many = "collection" in ty
                inner = ty["collection"]["elementtype"]["fqn"] if many else ty["fqn"]
                nesting = "single" if name == "timeouts" and top else "list"
                out["blocks"][name] = [nesting, 0 if optional else 1, 0 if many else 1,
                                       self.block(inner, False)]
                continue
            mode = "required" if not optional else "optional"
            out["attrs"][name] = [self.input_type(p["type"]), mode]
        return out

    def top(self, cls):
        config = next(p for p in cls["initializer"]["parameters"] if p["name"] == "config")
        out = self.block(config["type"]["fqn"], True)
        given = {p["name"] for p in self.struct_props(config["type"]["fqn"])}
        for p in cls.get("properties", []):
            if p.get("static") or p["name"].endswith("Input") or p["name"] in given:
                continue
            name = snake_or_doc(p)
            if name in out["blocks"]:
                continue
            out["attrs"][name] = [self.output_type(p["type"]), "computed"]
        return out


def snake_or_doc(prop):
    docs = prop.get("docs", {})
    m = ANCHOR.search(docs.get("summary", "") + " " + docs.get("remarks", ""))
    return m.group(1) if m else snake(prop["name"])


def derive(types):
    d = Deriver(types)
    schema = {"provider_version": PROVIDER_VERSION, "source": f"{PKG}@{PKG_VERSION}",
              "provider": None, "resource": {}, "data": {}}
    for fqn in sorted(types):
        cls = types[fqn]
        if cls.get("kind") != "class":
            continue
        m = REPRESENTS.match(cls.get("docs", {}).get("summary", ""))
        if not m:
            continue
        kind, name = m.groups()
        if kind is None:
            # The provider itself: its configuration has no computed attributes.
            config = next(p for p in cls["initializer"]["parameters"] if p["name"] == "config")
            schema["provider"] = d.block(config["type"]["fqn"], True)
            # `alias` is Terraform's meta-argument, not the provider's (cdktf lists it).
            schema["provider"]["attrs"].pop("alias", None)
            continue
        schema["resource" if kind == "resources" else "data"][name] = d.top(cls)
    if d.unknown:
        print("tf-schema: types taken as dynamic: " + ", ".join(sorted(d.unknown)), file=sys.stderr)
    return schema


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jsii", help="path of an unpacked .jsii (default: npm pack into build/)")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    args = ap.parse_args()
    schema = derive(read_types(args.jsii))
    data = json.dumps(schema, sort_keys=True, separators=(",", ":")).encode()
    if args.check:
        with gzip.open(args.out) as f:
            same = f.read() == data
        print(f"tf-schema: {os.path.relpath(args.out, ROOT)} "
              + ("is current" if same else "differs from the package: run scripts/tf-schema.py"),
              file=sys.stderr)
        return 0 if same else 1
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    # mtime 0: the same schema gives the same bytes.
    with open(args.out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                    filename="") as gz:
        gz.write(data)
    print(f"tf-schema: {len(schema['resource'])} resources, {len(schema['data'])} data sources "
          f"-> {os.path.relpath(args.out, ROOT)} ({os.path.getsize(args.out)} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""tf-schema.py — derive provider schemas (hashicorp/aws 6.25.0, hashicorp/archive 2.7.1) from
the .jsii type information of cdktf's prebuilt provider packages on npm.

    scripts/tf-schema.py [--check] [NAME...]      NAME: aws, archive (default: both)

For each provider the npm package (@cdktf/provider-aws@21.22.1, generated from hashicorp/aws
6.25.0; @cdktf/provider-archive@11.0.1, from hashicorp/archive 2.7.1) is fetched with `npm pack`,
or from registry.npmjs.org without npm, checked against its pinned integrity, into
build/tfschema/ (kept there: a second run reads the cache) and its schema written to
tests/deploy/schema/NAME-VERSION.json.gz. --check writes nothing: it fails when a committed file
differs from what its package gives.

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
import base64
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request

# NAME: (npm package, its version, the hashicorp/NAME version it was generated from)
PROVIDERS = {"aws": ("@cdktf/provider-aws", "21.22.1", "6.25.0"),
             "archive": ("@cdktf/provider-archive", "11.0.1", "2.7.1")}
# The packages' dist.integrity on the npm registry: a download must match it.
INTEGRITY = {
    "@cdktf/provider-aws@21.22.1": "sha512-BuSHeaQFUL9l33pBzIMRT7cTQ69AM2mLtijjteCPhVQRmvuhuj9Lvfym"
                                   "f7knAMhYqAT6+Lrls9jiGVW/Us3zrQ==",
    "@cdktf/provider-archive@11.0.1": "sha512-2Plwhj1hVUOYmQrxNbBvy2nrw/gyHZKnQFauPCwjhQX+MpRImF7c"
                                      "ceKgX8zZgBPvB5YEP75MIFPbr4sjxDWeHw==",
}
REGISTRY = "https://registry.npmjs.org"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, "build", "tfschema")
OUT_DIR = os.path.join(ROOT, "tests", "deploy", "schema")
# The attribute names in cdktf's generated JavaScript (`this.getStringAttribute('arn')`): a
# getter's Terraform name cannot be told from its camelCase name alone (outputBase64Sha256 is
# output_base64sha256, ipv6CidrBlock is ipv6_cidr_block).
ATTRIBUTE_NAME = re.compile(r"(?:Attribute|terraformAttribute)\('([a-z][a-z0-9_]*)'\)")
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


def integrity(path):
    with open(path, "rb") as f:
        return "sha512-" + base64.b64encode(hashlib.sha512(f.read()).digest()).decode()


def fetch(pkg, version, tgz):
    """The package's tarball: with npm (and its registry settings) where installed, else straight
    from the npm registry; either way it must match the pinned integrity."""
    tmp = tgz + ".part"
    if shutil.which("npm"):
        print(f"tf-schema: npm pack {pkg}@{version}", file=sys.stderr)
        with tempfile.TemporaryDirectory(dir=CACHE) as d:
            subprocess.run(["npm", "pack", "--silent", f"{pkg}@{version}"], cwd=d, check=True,
                           stdout=subprocess.DEVNULL)
            (name,) = os.listdir(d)
            os.replace(os.path.join(d, name), tmp)
    else:
        url = f"{REGISTRY}/{pkg}/-/{pkg.split('/')[-1]}-{version}.tgz"
        print(f"tf-schema: fetching {url}", file=sys.stderr)
        with urllib.request.urlopen(url, timeout=120) as resp, open(tmp, "wb") as out:
            shutil.copyfileobj(resp, out)
    got, want = integrity(tmp), INTEGRITY[f"{pkg}@{version}"]
    if got != want:
        os.unlink(tmp)
        raise SystemExit(f"tf-schema: {pkg}@{version}: integrity {got}, expected {want}")
    os.replace(tmp, tgz)


def read_types(pkg, version):
    """The .jsii types of the npm package, its tarball fetched once into build/tfschema/."""
    os.makedirs(CACHE, exist_ok=True)
    tgz = os.path.join(CACHE, f"{pkg.lstrip('@').replace('/', '-')}-{version}.tgz")
    if not os.path.exists(tgz):
        fetch(pkg, version, tgz)
    names = {}
    with tarfile.open(tgz) as tar:
        types = json.load(tar.extractfile("package/.jsii"))["types"]
        for member in tar:
            m = re.match(r"package/lib/(.+)/index\.js$", member.name)
            if m:
                text = tar.extractfile(member).read().decode("utf-8")
                found = {}
                for n in sorted(set(ATTRIBUTE_NAME.findall(text))):
                    found.setdefault(n.replace("_", ""), []).append(n)
                names[f"src/{m.group(1)}/index.ts"] = found
    return types, names


def snake(camel):
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", camel).lower()


class Deriver:
    def __init__(self, types, names):
        self.types = types
        self.names = names
        self.unknown = set()

    def getter_name(self, prop, cls):
        """A getter's Terraform name: its doc anchor, else the name the generated code reads."""
        docs = prop.get("docs", {})
        m = ANCHOR.search(docs.get("summary", "") + " " + docs.get("remarks", ""))
        if m:
            return m.group(1)
        known = self.names.get(cls.get("locationInModule", {}).get("filename"), {})
        plain = snake(prop["name"])
        candidates = known.get(prop["name"].lower(), [])
        # Two names differing only in underscores (rare): the plain conversion if it is one.
        if not candidates or plain in candidates:
            return plain
        return candidates[0]

    def tf_name(self, prop, owner):
        """An input's Terraform name: its doc anchor, its block name, else as a getter's."""
        m = BLOCK_DOC.match(prop.get("docs", {}).get("summary", ""))
        if m and not ANCHOR.search(prop.get("docs", {}).get("remarks", "")):
            return m.group(1)
        return self.getter_name(prop, owner)

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
            return ["object", {self.tf_name(p, self.types[fqn]): self.input_type(p["type"])
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
            attrs[self.getter_name(p, cls)] = self.output_type(p["type"])
        return ["object", attrs]

    def block(self, fqn, top):
        out = {"attrs": {}, "blocks": {}}
        for p in self.struct_props(fqn):
            name = self.tf_name(p, self.types[fqn])
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
            name = self.getter_name(p, cls)
            if name in out["blocks"]:
                continue
            out["attrs"][name] = [self.output_type(p["type"]), "computed"]
        return out


def derive(name, types, names):
    pkg, pkg_version, version = PROVIDERS[name]
    represents = re.compile(r"Represents a \{@link https://registry\.terraform\.io/providers/hashicorp/"
                            + re.escape(f"{name}/{version}")
                            + r"/docs(?:/(resources|data-sources)/\w+)? (\w+)\}")
    d = Deriver(types, names)
    schema = {"provider_version": version, "source": f"{pkg}@{pkg_version}",
              "provider": None, "resource": {}, "data": {}}
    for fqn in sorted(types):
        cls = types[fqn]
        if cls.get("kind") != "class":
            continue
        m = represents.match(cls.get("docs", {}).get("summary", ""))
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
    ap.add_argument("--check", action="store_true", help="compare with the committed files")
    ap.add_argument("names", nargs="*", choices=[[]] + sorted(PROVIDERS), default=[])
    args = ap.parse_args()
    stale = 0
    for name in args.names or sorted(PROVIDERS):
        pkg, pkg_version, version = PROVIDERS[name]
        schema = derive(name, *read_types(pkg, pkg_version))
        data = json.dumps(schema, sort_keys=True, separators=(",", ":")).encode()
        out = os.path.join(OUT_DIR, f"{name}-{version}.json.gz")
        rel = os.path.relpath(out, ROOT)
        if args.check:
            with gzip.open(out) as f:
                same = f.read() == data
            stale += not same
            print(f"tf-schema: {rel} " + ("is current" if same else
                                          "differs from its package: run scripts/tf-schema.py"),
                  file=sys.stderr)
            continue
        os.makedirs(OUT_DIR, exist_ok=True)
        # mtime 0: the same schema gives the same bytes.
        with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                    filename="") as gz:
            gz.write(data)
        print(f"tf-schema: {len(schema['resource'])} resources, {len(schema['data'])} data sources "
              f"-> {rel} ({os.path.getsize(out)} bytes)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())

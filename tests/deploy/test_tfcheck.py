#!/usr/bin/env python3
"""test_tfcheck.py CASE — proves each check of tfcheck.py passes on tests/deploy/fixtures/good and
fails, saying why, on the broken fixture made for it. Each CASE is one CTest test
(tests/CMakeLists.txt); `test_tfcheck.py --list` prints them. Run with build/tfvenv's Python."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GOOD = "tests/deploy/fixtures/good"
BROKEN = "tests/deploy/fixtures/broken"
GOOD_PLAN = ["--var-file", f"{GOOD}/terraform.tfvars.example", "--expect",
             "tests/deploy/fixtures/good.plan.txt"]

# CASE: (tfcheck arguments, expected exit status, lines the output must hold)
CASES = {
    "good_fmt": (["fmt", GOOD], 0, ["fmt: tests/deploy/fixtures/good formatted"]),
    "good_load": (["load", GOOD], 0, ["load: 2 module(s)"]),
    "good_validate": (["validate", GOOD], 0, [
        "validate: 1 configuration(s) under tests/deploy/fixtures/good (and the 1 module(s) they call)"]),
    "good_plan": (["plan", GOOD, *GOOD_PLAN], 0, ["plan: 9 resources planned"]),
    "good_test": (["test", GOOD], 0, ["test: terraform test passed in 1 configuration(s)"]),
    "good_checkov": (["checkov", GOOD], 0, ["1 skipped with a reason, 0 failed"]),
    "fmt_unformatted": (["fmt", f"{BROKEN}/unformatted"], 1, [
        f"{BROKEN}/unformatted/main.tf",
        '+  name                    = "fixture"']),
    "load_duplicate": (["load", f"{BROKEN}/duplicate_resource"], 1, [
        f'{BROKEN}/duplicate_resource/main.tf:7: error: Duplicate resource "aws_sqs_queue" configuration']),
    "validate_unknown_argument": (["validate", f"{BROKEN}/unknown_argument"], 1, [
        f'{BROKEN}/unknown_argument/main.tf:4: error: Unsupported argument: An argument named "nmae"',
        f'{BROKEN}/unknown_argument/main.tf:14: error: Unsupported argument: An argument named "max_vcpu"',
        f'{BROKEN}/unknown_argument/main.tf:23: error: Unsupported block type: Blocks of type "encryption"',
        f'{BROKEN}/unknown_argument/modules/q/main.tf:3: error: Unsupported argument: An argument named '
        '"delay_second"']),
    "validate_missing_required": (["validate", f"{BROKEN}/missing_required"], 1, [
        f'{BROKEN}/missing_required/main.tf:3: error: Missing required argument: The argument "name"',
        f'{BROKEN}/missing_required/main.tf:3: error: Missing required argument: The argument "state"',
        f'{BROKEN}/missing_required/main.tf:7: error: Missing required argument: The argument '
        '"assume_role_policy"',
        f'{BROKEN}/missing_required/main.tf:11: error: Insufficient versioning_configuration blocks']),
    "validate_unknown_type": (["validate", f"{BROKEN}/unknown_type"], 1, [
        f'{BROKEN}/unknown_type/main.tf:2: error: Invalid resource type: The provider hashicorp/aws '
        'does not support resource type "aws_sqs_quue"',
        f'{BROKEN}/unknown_type/main.tf:6: error: Invalid data source: The provider hashicorp/aws '
        'does not support data source "aws_batch_job_queues"']),
    "validate_dangling_reference": (["validate", f"{BROKEN}/dangling_reference"], 1, [
        f'{BROKEN}/dangling_reference/main.tf:12: error: Unsupported attribute: This object has no '
        'argument, nested block, or exported attribute named "arnn"',
        f'{BROKEN}/dangling_reference/main.tf:16: error: Unsupported attribute: This object does '
        'not have an attribute named "arn"',
        f'{BROKEN}/dangling_reference/main.tf:20: error: Reference to undeclared input variable',
        f'{BROKEN}/dangling_reference/main.tf:24: error: Reference to undeclared resource']),
    "test_failed_assertion": (["test", f"{BROKEN}/failed_assertion"], 1, [
        'run "keeps_messages_four_days"... fail', "Error: Test assertion failed",
        "the queue keeps messages for four days",
        f"test: terraform test failed in {BROKEN}/failed_assertion"]),
    "checkov_failure": (["checkov", f"{BROKEN}/checkov_failure"], 1, [
        f"{BROKEN}/checkov_failure/main.tf:2: CKV_AWS_27 aws_sqs_queue.q"]),
    "checkov_skip_without_reason": (["checkov", f"{BROKEN}/skip_without_reason"], 1, [
        f"{BROKEN}/skip_without_reason/main.tf:3: checkov:skip=CKV_AWS_27 without a reason"]),
    # The planned list differs from the expected one both ways: both are reported.
    "plan_mismatch": (None, 1, [
        'expected, not planned: aws_sqs_queue_policy.send["tpu"] create',
        'planned, not expected: aws_sqs_queue_policy.send["io"] create']),
}


def mismatched_expectation(tmp):
    with open(os.path.join(ROOT, GOOD_PLAN[-1]), encoding="utf-8") as f:
        lines = f.read().replace('send["io"]', 'send["tpu"]')
    path = os.path.join(tmp, "expect.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(lines)
    return ["plan", GOOD, *GOOD_PLAN[:-1], path]


def main():
    if len(sys.argv) != 2 or (sys.argv[1] not in CASES and sys.argv[1] != "--list"):
        print(f"usage: {sys.argv[0]} --list | CASE", file=sys.stderr)
        return 2
    if sys.argv[1] == "--list":
        print("\n".join(CASES))
        return 0
    args, want_rc, want_lines = CASES[sys.argv[1]]
    with tempfile.TemporaryDirectory() as tmp:
        if args is None:
            args = mismatched_expectation(tmp)
        res = subprocess.run([sys.executable, os.path.join(HERE, "tfcheck.py"), *args], cwd=ROOT,
                             capture_output=True, text=True, check=False)
    out = res.stdout + res.stderr
    sys.stdout.write(out)
    problems = [f"exit status {res.returncode}, expected {want_rc}"] if res.returncode != want_rc else []
    problems += [f"missing from the output: {line}" for line in want_lines if line not in out]
    for p in problems:
        print(f"test_tfcheck {sys.argv[1]}: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

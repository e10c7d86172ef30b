"""Data between pipeline steps on AWS: the job entrypoint fetches the parents' outputs from
S3 (moto in server mode, the CTest fixture's) into ML_INPUT_DIR and publishes its own outputs
back to S3, exactly as it does with file:// locations locally.

Run by CTest with the test venv's Python (boto3) and MLGW_TEST_MOTO_DIR set.
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
import uuid

import boto3

ENTRYPOINT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "images",
                          "entrypoint", "entrypoint.py")


def moto_url() -> str:
    with open(os.path.join(os.environ["MLGW_TEST_MOTO_DIR"], "url"), encoding="utf-8") as f:
        return f.read().strip()


class S3InputsTest(unittest.TestCase):
    def setUp(self) -> None:
        self.aws = {"AWS_ENDPOINT_URL": moto_url(), "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                    "AWS_EC2_METADATA_DISABLED": "true"}
        self.s3 = boto3.client("s3", endpoint_url=self.aws["AWS_ENDPOINT_URL"],
                               region_name="us-east-1", aws_access_key_id="testing",
                               aws_secret_access_key="testing")
        self.bucket = f"pipeline-{uuid.uuid4().hex[:12]}"
        self.s3.create_bucket(Bucket=self.bucket)
        self.tmp = tempfile.mkdtemp(prefix="mlgw-s3in-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        os.makedirs(os.path.join(self.tmp, "input", "jobs"))

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)

    def run_job(self, script: str, **env: str) -> subprocess.CompletedProcess[str]:
        with open(os.path.join(self.tmp, "input", "jobs", "step.py"), "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(script))
        full = {k: v for k, v in os.environ.items() if not k.startswith(("MLGW_", "ML_", "AWS_"))}
        full.update(self.aws)
        full.update({"SCRIPT_KEY": "jobs/step.py", "JOB_ID": "job-s3",
                     "MLGW_INPUT_DIR": os.path.join(self.tmp, "input"),
                     "ML_OUTPUT_DIR": os.path.join(self.tmp, "out"),
                     "MLGW_OUTPUT_URI": f"s3://{self.bucket}/jobs/child/"})
        full.update(env)
        return subprocess.run([sys.executable, ENTRYPOINT], env=full, capture_output=True,
                              text=True, timeout=120)

    def test_parents_on_s3_are_fetched_and_the_outputs_published_to_s3(self) -> None:
        self.put("jobs/prep/data.csv", b"a,b")
        self.put("jobs/prep/manifest.json", b"{}")
        self.put("jobs/t0/ckpt/model.pt", b"m0")
        self.put("jobs/t1/ckpt/model.pt", b"m1")
        parents = {"prep": [f"s3://{self.bucket}/jobs/prep/"],
                   "train": [f"s3://{self.bucket}/jobs/t0/", f"s3://{self.bucket}/jobs/t1/"]}
        done = self.run_job("""
            import os
            root = os.environ["ML_INPUT_DIR"]
            names = []
            for base, _dirs, files in os.walk(root):
                names += [os.path.relpath(os.path.join(base, n), root) for n in files]
            with open(os.path.join(os.environ["ML_OUTPUT_DIR"], "seen.txt"), "w") as out:
                out.write("\\n".join(sorted(names)))
        """, PARENT_OUTPUT_URIS=json.dumps(parents))
        self.assertEqual(done.returncode, 0, done.stderr)
        seen = self.s3.get_object(Bucket=self.bucket, Key="jobs/child/seen.txt")["Body"].read()
        self.assertEqual(seen.decode().split("\n"),
                         ["prep/data.csv", "train/0/ckpt/model.pt", "train/1/ckpt/model.pt"])
        manifest = json.loads(
            self.s3.get_object(Bucket=self.bucket, Key="jobs/child/manifest.json")["Body"].read())
        self.assertEqual(manifest["exit_code"], 0)

    def test_a_parent_missing_on_s3_gives_an_empty_folder_and_a_missing_bucket_fails(self) -> None:
        script = "import os, sys\nsys.exit(0 if os.path.isdir(os.path.join(os.environ['ML_INPUT_DIR'], 'p')) else 4)\n"
        done = self.run_job(script, PARENT_OUTPUT_URIS=json.dumps(
            {"p": [f"s3://{self.bucket}/jobs/nothing-here/"]}))
        self.assertEqual(done.returncode, 0, done.stderr)
        done = self.run_job(script, PARENT_OUTPUT_URIS=json.dumps(
            {"p": ["s3://no-such-bucket-mlgw/jobs/x/"]}))
        self.assertEqual(done.returncode, 127, done.stderr)
        self.assertIn("cannot list s3://no-such-bucket-mlgw/jobs/x/", done.stderr)


if __name__ == "__main__":
    unittest.main()

"""deploy/modules/lambda/main.tf and the functions agree: the handlers it names exist, and
the environment it gives each function is exactly what the function reads."""
from __future__ import annotations

import importlib
import pathlib
import re

import dispatcher

MAIN_TF = (pathlib.Path(__file__).resolve().parents[2] / "deploy/modules/lambda/main.tf").read_text()


def function_block(name: str) -> str:
    m = re.search(r'^resource "aws_lambda_function" "%s" \{(.*?)^\}' % name, MAIN_TF, re.M | re.S)
    assert m, f"no aws_lambda_function.{name}"
    return m.group(1)


def env_names(block: str) -> set[str]:
    m = re.search(r"^\s*variables = \{(.*?)^\s*\}", block, re.M | re.S)
    assert m, "no environment variables"
    return set(re.findall(r"^\s*([A-Z_][A-Z0-9_]*)\s*=", m.group(1), re.M))


def handler(block: str) -> str:
    return re.search(r'^\s*handler\s*=\s*"([^"]+)"', block, re.M).group(1)


def test_handlers_exist():
    for name in ("dispatcher", "monitor"):
        module, func = handler(function_block(name)).split(".")
        assert callable(getattr(importlib.import_module(module), func))


def test_dispatcher_environment_is_what_settings_reads():
    given = env_names(function_block("dispatcher"))
    full = {n: "1" for n in given}
    dispatcher.Settings.from_env(full)  # enough to build the settings
    for name in given:  # and each one is read: a bad value of it is noticed or used
        if name.endswith(("VCPUS", "MEMORY", "GPUS")):
            try:
                dispatcher.Settings.from_env(dict(full, **{name: "x"}))
            except RuntimeError as exc:
                assert name in str(exc)
            else:
                raise AssertionError(f"{name} is set by Terraform but not read")
        else:
            s = dispatcher.Settings.from_env(dict(full, **{name: "marker"}))
            assert "marker" in vars(s).values(), f"{name} is set by Terraform but not read"


def test_monitor_environment():
    assert env_names(function_block("monitor")) == {"NOTIFY_TOPIC_ARN", "NOTIFY_STATUSES"}

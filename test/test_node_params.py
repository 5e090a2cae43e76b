"""The node's parameter table, config/anticipation.yaml, the launch file and the entry point agree."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from retf_ros.ros.params import PARAMETERS, SPECS, descriptor, validation_problem

REPO = Path(__file__).resolve().parents[1]


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        out.update(_flatten(value, name + ".") if isinstance(value, dict) else {name: value})
    return out


def test_yaml_lists_every_parameter_with_its_default():
    config = yaml.safe_load((REPO / "config" / "anticipation.yaml").read_text())
    values = _flatten(config["/**"]["ros__parameters"])
    assert set(values) == set(SPECS)
    for name, value in values.items():
        default = SPECS[name].default
        assert value == default and type(value) is type(default), name


def test_yaml_documents_every_parameter_with_a_comment():
    lines = (REPO / "config" / "anticipation.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)(\w+): \S", line)
        if match and not lines[i - 1].strip().startswith("#"):
            # a key without its own comment belongs to a group documented above (qos.*, erank.*)
            assert match.group(2) in {"history", "depth", "fused_error", "mutual_gain_error", "reliability"}, line


def test_every_parameter_has_description_type_and_range_or_choices():
    from rcl_interfaces.msg import ParameterType

    for spec in PARAMETERS:
        d = descriptor(spec)
        assert d.name == spec.name and len(d.description) > 20
        assert d.type != ParameterType.PARAMETER_NOT_SET
        if isinstance(spec.default, float):
            assert d.floating_point_range, spec.name
        elif isinstance(spec.default, int) and not isinstance(spec.default, bool):
            assert d.integer_range, spec.name
        elif isinstance(spec.default, str) and spec.choices:
            assert d.additional_constraints.startswith("one of")
        assert validation_problem(spec.name, spec.default) is None, spec.name


@pytest.mark.parametrize("name, value", [
    ("device", "tpu"), ("device", "cuda:x"), ("precision", "fp64"), ("sync.reference", "thermal"),
    ("sync.policy", "any"), ("skeleton.layout", "openpose_18"), ("qos.depth.reliability", "sometimes"),
    ("sync.slop_s", 0.0), ("torch_threads", 0),
])
def test_bad_values_are_refused_naming_the_parameter(name, value):
    problem = validation_problem(name, value)
    assert problem is not None and f"'{name}'" in problem


@pytest.mark.parametrize("value", ["auto", "cpu", "cuda", "cuda:0", "cuda:3"])
def test_device_syntax_accepted(value):
    assert validation_problem("device", value) is None


def test_launch_file_names_the_installed_executable_and_config():
    source = (REPO / "launch" / "anticipation.launch.py").read_text()
    tree = ast.parse(source)
    constants = {node.targets[0].id: node.value for node in tree.body
                 if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)}
    executable = ast.literal_eval(constants["EXECUTABLE"])
    assert ast.literal_eval(constants["PACKAGE"]) == "retf_ros"
    setup = (REPO / "setup.py").read_text()
    assert f'"{executable} = retf_ros.ros.node:main"' in setup
    assert (REPO / "config" / "anticipation.yaml").exists() and '"config", "anticipation.yaml"' in source
    for argument in ("namespace", "params_file", "device", "autostart", "rgb_topic", "depth_topic", "skeleton_topic"):
        assert f'"{argument}"' in source
    assert 'glob("launch/*.launch.py")' in setup and 'glob("config/*.yaml")' in setup


def test_installed_entry_point_resolves_to_node_main():
    from importlib.metadata import entry_points

    from retf_ros.ros import node

    scripts = {e.name: e for e in entry_points(group="console_scripts")}
    if "anticipation_node" not in scripts:
        pytest.skip("retf_ros is not pip-installed in this environment")
    assert scripts["anticipation_node"].load() is node.main


def test_node_documentation_lists_every_parameter():
    text = (REPO / "docs" / "node.md").read_text()
    missing = [spec.name for spec in PARAMETERS if f"`{spec.name}`" not in text]
    assert missing == []


def test_a_wrong_type_is_refused_naming_the_parameter_and_the_expected_type():
    from retf_ros.ros.params import type_problem

    assert type_problem("sync.queue_size", "abc") == ("parameter 'sync.queue_size' must be an integer (default 5), "
                                                      "got a string 'abc'")
    assert "parameter 'sync.slop_s' must be a double" in type_problem("sync.slop_s", 1)
    assert type_problem("sync.slop_s", 0.05) is None and type_problem("not.declared", 1) is None


def test_unknown_names_are_listed_in_the_refusal():
    from retf_ros.ros.params import unknown_problem

    assert unknown_problem(["sync.slopp_s"]).startswith("unknown parameter 'sync.slopp_s': ")


def test_stamp_and_joint_drop_reasons_are_in_the_documented_catalogue():
    from retf_ros.runtime.stamps import STAMP_DROP_REASONS

    catalogue = (REPO / "docs" / "node.md").read_text().split("## Bad input", 1)[1].split("\n## ", 1)[0]
    for reason in (*STAMP_DROP_REASONS, "nonfinite_joints"):
        assert f"| `{reason}` |" in catalogue, reason

"""The node's parameter table, config/anticipation.yaml, the launch wiring and the entry point agree."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from retf_ros.ros.params import PARAMETERS, POSE_PARAMETERS, POSE_SPECS, SPECS, descriptor, validation_problem

REPO = Path(__file__).resolve().parents[1]


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        out.update(_flatten(value, name + ".") if isinstance(value, dict) else {name: value})
    return out


NODE_TABLES = pytest.mark.parametrize("config_file, specs", [("anticipation.yaml", SPECS),
                                                              ("pose.yaml", POSE_SPECS)])


@NODE_TABLES
def test_yaml_lists_every_parameter_with_its_default(config_file, specs):
    config = yaml.safe_load((REPO / "config" / config_file).read_text())
    values = _flatten(config["/**"]["ros__parameters"])
    assert set(values) == set(specs)
    for name, value in values.items():
        default = specs[name].default
        assert value == default and type(value) is type(default), name


@NODE_TABLES
def test_yaml_documents_every_parameter_with_a_comment(config_file, specs):
    lines = (REPO / "config" / config_file).read_text().splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)(\w+): \S", line)
        if match and not lines[i - 1].strip().startswith("#"):
            # a key without its own comment belongs to a group documented above (qos.*, erank.*)
            assert match.group(2) in {"history", "depth", "fused_error", "mutual_gain_error", "reliability"}, line


def test_every_parameter_has_description_type_and_range_or_choices():
    from rcl_interfaces.msg import ParameterType

    for spec in (*PARAMETERS, *POSE_PARAMETERS):
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
    ("sync.slop_s", 0.0), ("torch_threads", 0), ("erank.warn_percentile", 3.0), ("erank.high_percentile", 97.0),
])
def test_bad_values_are_refused_naming_the_parameter(name, value):
    problem = validation_problem(name, value)
    assert problem is not None and f"'{name}'" in problem


@pytest.mark.parametrize("name, value", [("erank.warn_percentile", 0.0), ("erank.warn_percentile", 2.0),
                                         ("erank.error_percentile", 0.5), ("erank.high_percentile", 99.0)])
def test_erank_percentiles_must_be_recorded_ones_or_zero(name, value):
    assert validation_problem(name, value) is None


@pytest.mark.parametrize("value", ["auto", "cpu", "cuda", "cuda:0", "cuda:3"])
def test_device_syntax_accepted(value):
    assert validation_problem("device", value) is None


def test_launch_wiring_names_the_installed_executable_and_config():
    from retf_ros.ros.launch_arguments import (ANTICIPATION_EXECUTABLE, ANTICIPATION_PARAMS, PACKAGE, POSE_EXECUTABLE,
                                               POSE_PARAMS)

    assert PACKAGE == "retf_ros"
    setup = (REPO / "setup.py").read_text()
    assert f'"{ANTICIPATION_EXECUTABLE} = retf_ros.ros.node:main"' in setup
    assert (REPO / ANTICIPATION_PARAMS).is_file()
    assert f'"{POSE_EXECUTABLE} = retf_ros.ros.pose_node:main"' in setup
    assert (REPO / POSE_PARAMS).is_file()
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
    pose_section = text[text.index("## pose_node"):]
    assert [spec.name for spec in POSE_PARAMETERS if f"`{spec.name}`" not in pose_section] == []


def test_pose_node_refuses_bad_values_naming_the_parameter():
    problem = validation_problem("lifting.min_visibility", 1.5, POSE_SPECS)
    assert problem is not None and "'lifting.min_visibility'" in problem
    assert validation_problem("qos.camera_info.reliability", "sometimes", POSE_SPECS) is not None


def test_a_wrong_type_is_refused_naming_the_parameter_and_the_expected_type():
    from retf_ros.ros.params import type_problem

    assert type_problem("sync.queue_size", "abc") == ("parameter 'sync.queue_size' must be an integer (default 5), "
                                                      "got a string 'abc'")
    assert "parameter 'sync.slop_s' must be a double" in type_problem("sync.slop_s", 1)
    assert type_problem("sync.slop_s", 0.05) is None and type_problem("not.declared", 1) is None
    assert "'lifting.patch_radius' must be an integer" in type_problem("lifting.patch_radius", 2.5, POSE_SPECS)


def test_unknown_names_are_listed_in_the_refusal():
    from retf_ros.ros.params import unknown_problem

    assert unknown_problem(["sync.slopp_s"], "pose_node", "config/pose.yaml") == (
        "unknown parameter 'sync.slopp_s': pose_node declares only the parameters listed in config/pose.yaml")
    assert unknown_problem(["a", "b"], "anticipation_node", "config/anticipation.yaml").startswith(
        "unknown parameters 'a', 'b': anticipation_node declares")


def test_stamp_and_joint_drop_reasons_are_in_the_documented_catalogue():
    from retf_ros.runtime.stamps import STAMP_DROP_REASONS

    catalogue = (REPO / "docs" / "node.md").read_text().split("## Bad input", 1)[1].split("\n## ", 1)[0]
    for reason in (*STAMP_DROP_REASONS, "nonfinite_joints"):
        assert f"| `{reason}` |" in catalogue, reason

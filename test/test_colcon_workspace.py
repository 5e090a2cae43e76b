"""The package in a colcon workspace, as a ROS user builds it (colcon from the package index):
`colcon build` installs the layout a distro expects, the installed anticipation_node starts with
what the launch file would pass it (over loopback DDS), and `colcon test` runs this package's
tests with pytest and fails when one fails."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from retf_ros.ros.launch_arguments import LAUNCH_ARGUMENTS, nodes_to_launch
from retf_ros.harness.processes import node_argv, publisher_argv, start, start_probe, wait_for

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "retf_ros"
VENV_BIN = Path(sys.executable).parent  # not resolved: a venv's bin, as `source venv/bin/activate` puts it on PATH
COLCON = shutil.which("colcon", path=os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")]))

pytestmark = [pytest.mark.skipif(COLCON is None, reason="colcon is not installed (requirements.txt pins it)"),
              pytest.mark.timeout(180)]


def colcon(workspace: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([COLCON, "--log-base", str(workspace / "log"), *args], cwd=workspace, env=env,
                          capture_output=True, text=True, timeout=120)


def build(workspace: Path) -> Path:
    """`colcon build --packages-select retf_ros` in ``workspace``; the package's install prefix."""
    done = colcon(workspace, "build", "--packages-select", PACKAGE)
    assert done.returncode == 0, done.stdout + done.stderr
    return workspace / "install" / PACKAGE


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """This checkout built in a fresh workspace (src/retf_ros links to it); the install prefix."""
    workspace = tmp_path_factory.mktemp("colcon_ws")
    (workspace / "src").mkdir()
    (workspace / "src" / PACKAGE).symlink_to(ROOT, target_is_directory=True)
    return build(workspace)


def sourced(env: dict[str, str], prefix: Path) -> dict[str, str]:
    """``env`` as after `source venv/bin/activate` (this interpreter's venv) and
    `source install/setup.sh` (the workspace's PYTHONPATH, AMENT_PREFIX_PATH, ...)."""
    activated = dict(env, PATH=os.pathsep.join([str(VENV_BIN), env.get("PATH", "")]))
    dump = subprocess.run(["sh", "-c", f'. "{prefix.parent}/setup.sh" && env -0'], env=activated,
                          capture_output=True, check=True).stdout
    return dict(item.decode().split("=", 1) for item in dump.split(b"\0") if item)


def test_colcon_build_installs_the_layout_a_distro_expects(installed):
    for relative in ("lib/retf_ros/anticipation_node", "lib/retf_ros/retf", "share/retf_ros/package.xml",
                     "share/retf_ros/launch/anticipation.launch.py",
                     "share/ament_index/resource_index/packages/retf_ros"):
        assert (installed / relative).is_file(), relative
    assert os.access(installed / "lib/retf_ros/anticipation_node", os.X_OK)
    # The executables run the python3 of the activated venv (setup.cfg [build_scripts]).
    assert (installed / "lib/retf_ros/anticipation_node").read_text().startswith("#!/usr/bin/env python3\n")
    assert {p.name for p in (installed / "share/retf_ros/config").iterdir()} == {p.name for p in (ROOT / "config").glob("*.yaml")}
    assert ET.parse(installed / "share/retf_ros/package.xml").getroot().findtext("name") == PACKAGE
    (site,) = installed.glob("lib/python3*/site-packages")
    for relative in ("checkpoints/demo.safetensors", "checkpoints/demo.json", "resources/fastdds_loopback.xml",
                     "ros/launch_arguments.py"):
        assert (site / PACKAGE / relative).is_file(), relative


def test_installed_node_starts_with_the_launch_wiring_and_reads_compressed_rgb_from_rgb_topic(
        installed, ros_env, unique_namespace, tmp_path):
    share = installed / "share" / PACKAGE
    # The user's parameters file: the installed one, on the CPU, reading compressed RGB.
    params = yaml.safe_load((share / "config/anticipation.yaml").read_text())
    node_params = params["/**"]["ros__parameters"]
    node_params.update(device="cpu", torch_threads=1)
    node_params["rgb"]["compressed"] = True
    user_params = tmp_path / "robot.yaml"
    user_params.write_text(yaml.safe_dump(params))
    given = {argument.name: argument.default for argument in LAUNCH_ARGUMENTS} | {
        "namespace": unique_namespace, "params_file": str(user_params), "rgb_topic": "camera/color/image_raw",
        "autostart": "true"}
    (launched,) = nodes_to_launch(given, str(share))
    assert launched.overrides == {"autostart": True}  # typed from the installed config, device left alone
    argv = node_argv(launched.params_file, launched.overrides, launched.name, dict(launched.remappings),
                     launched.namespace, command=[str(installed / "lib" / PACKAGE / launched.executable)])
    node = start("installed_node", argv, sourced(ros_env, installed), tmp_path)
    camera = start("camera", publisher_argv("--compressed", "--rate", "10", "--width", "64", "--height", "48",
                                            "--ros-args", "-r", f"__ns:={unique_namespace}",
                                            "-r", "rgb/image_raw/compressed:=camera/color/image_raw/compressed"),
                   ros_env, tmp_path)
    probe = start_probe(ros_env, tmp_path, node_name=f"{unique_namespace}/{launched.name}")
    try:
        def active() -> bool:
            if not node.alive():
                raise RuntimeError(f"installed node exited with {node.popen.returncode}:\n{node.log()[-3000:]}")
            return probe.command("state")["state"] == "active"

        wait_for(active, 60, "the installed node to activate", interval=0.5)
        assert probe.command("get device")["value"] == "cpu"  # the user's file, not a launch default
        assert f"configured: checkpoint {installed}" in node.log()  # the installed copy ran
        doc = wait_for(lambda: next((e["doc"] for e in probe.events("anticipation")
                                     if e.get("doc", {}).get("modalities", {}).get("rgb") == "ok"), None),
                       45, "an anticipation with compressed RGB from camera/color/image_raw/compressed")
        assert doc["modalities"] == {"rgb": "ok", "depth": "ok", "skeleton": "ok"}
    finally:
        codes = {"node": node.stop(), "camera": camera.stop(), "probe": probe.stop()}
    assert codes["node"] == 0, node.log()[-3000:]


TINY_TEST = '''import os


def test_runs():
    assert sorted("tiny") == ["i", "n", "t", "y"]


def test_fails_when_asked():
    assert os.environ.get("TINY_FAIL") != "1"
'''


@pytest.fixture
def tiny_workspace(tmp_path) -> Path:
    """A workspace whose src/retf_ros has this package's build and test configuration (package.xml,
    setup.py, setup.cfg, the ament marker) around a two-test suite, one of which fails on demand:
    what `colcon test` does with the configuration, without running the whole suite inside it."""
    package = tmp_path / "src" / PACKAGE
    (package / "test").mkdir(parents=True)
    for name in ("package.xml", "setup.py", "setup.cfg"):
        shutil.copy(ROOT / name, package / name)
    shutil.copytree(ROOT / "resource", package / "resource")
    (package / PACKAGE).mkdir()
    (package / PACKAGE / "__init__.py").write_text("")
    (package / "test" / "test_tiny.py").write_text(TINY_TEST)
    build(tmp_path)
    return tmp_path


def junit_counts(workspace: Path) -> dict[str, int]:
    suite = ET.parse(workspace / "build" / PACKAGE / "pytest.xml").getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    return {key: int(suite.get(key)) for key in ("tests", "failures", "errors")}


def test_colcon_test_runs_pytest_and_fails_when_a_test_fails(tiny_workspace):
    test = ("test", "--packages-select", PACKAGE, "--return-code-on-test-failure")
    passing = colcon(tiny_workspace, *test, env=dict(os.environ, TINY_FAIL="0"))
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert junit_counts(tiny_workspace) == {"tests": 2, "failures": 0, "errors": 0}  # pytest's report, both tests

    failing = colcon(tiny_workspace, *test, env=dict(os.environ, TINY_FAIL="1"))
    assert failing.returncode != 0
    assert junit_counts(tiny_workspace) == {"tests": 2, "failures": 1, "errors": 0}
    summary = colcon(tiny_workspace, "test-result", "--test-result-base", str(tiny_workspace / "build" / PACKAGE))
    assert summary.returncode != 0 and "1 failure" in summary.stdout, summary.stdout

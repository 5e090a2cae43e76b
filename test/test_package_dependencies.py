"""package.xml declares exactly what the code imports, with rosdep keys that resolve on Humble,
Jazzy and Kilted (test/data/rosdep_keys.yaml says in which rosdep file each key lives); what
has no usable key is pinned in requirements-ros.txt, the file the README installs on a distro."""
from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from retf_ros.bags import conventions

ROOT = Path(__file__).resolve().parents[1]
KEYS = yaml.safe_load((ROOT / "test" / "data" / "rosdep_keys.yaml").read_text())
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)$")


def package_xml_keys(*tags: str) -> set[str]:
    root = ET.parse(ROOT / "package.xml").getroot()
    return {element.text.strip() for tag in tags for element in root.findall(tag)}


def _optional_import_nodes(tree: ast.AST) -> set[int]:
    """ids of import statements inside ``try: ... except ImportError`` (optional features)."""
    optional: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                handler.type is not None and re.search(r"\b(ImportError|ModuleNotFoundError)\b", ast.unparse(handler.type))
                for handler in node.handlers):
            optional.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return optional


def third_party_imports(files: list[Path], local: set[str]) -> set[str]:
    """Top-level modules the files import that are neither the standard library nor ``local``,
    leaving out optional imports (an ImportError handled where they are imported)."""
    found: set[str] = set()
    for path in files:
        tree = ast.parse(path.read_text())
        optional = _optional_import_nodes(tree)
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            found.update(name.split(".")[0] for name in names)
    return {name for name in found if name not in sys.stdlib_module_names and name not in local}


def code_imports() -> set[str]:
    """What the installed package needs: retf_ros and its launch file, plus the message packages
    it imports by type name (retf_ros.bags.conventions.message_class)."""
    files = [*(ROOT / "retf_ros").rglob("*.py"), *(ROOT / "launch").glob("*.py")]
    by_name = {value.split("/")[0] for name, value in vars(conventions).items()
               if name.endswith("_TYPE") and isinstance(value, str) and "/msg/" in value}
    return third_party_imports(files, {"retf_ros"}) | by_name


def imports_of_the_tests() -> set[str]:
    files = list((ROOT / "test").rglob("*.py"))
    return third_party_imports(files, {"retf_ros", *(path.stem for path in files)})


def provided_by(keys: set[str]) -> set[str]:
    """The modules the rosdep keys ``keys`` install (from the table)."""
    table = KEYS["ros_packages"] | KEYS["python_yaml"]
    return {module for key in keys for module in table[key]["imports"]}


def pins(path: Path) -> dict[str, str]:
    """name -> version of a requirements file whose every requirement is an exact pin."""
    result = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            match = PIN.match(line)
            assert match, f"{path.name}: {line!r} is not an exact NAME==VERSION pin"
            result[_normalised(match[1])] = match[2]
    return result


def _normalised(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def distributions_of(modules: set[str]) -> set[str]:
    """The installed distributions that provide ``modules`` (import name -> package index name)."""
    index = importlib.metadata.packages_distributions()
    missing = {module for module in modules if module not in index}
    assert not missing, f"not installed here, cannot map to a distribution: {sorted(missing)}"
    return {_normalised(dist) for module in modules for dist in index[module]}


def test_every_declared_key_is_a_rosdep_key_of_humble_jazzy_and_kilted():
    declared = package_xml_keys("depend", "build_depend", "exec_depend", "test_depend", "build_export_depend")
    known = set(KEYS["ros_packages"]) | set(KEYS["python_yaml"])
    assert declared - known == set(), "declared keys missing from test/data/rosdep_keys.yaml"
    for key, entry in KEYS["python_yaml"].items():
        assert entry["debian"] and entry["ubuntu"], key  # a package for jammy and noble, not null


def test_every_module_the_code_imports_is_declared_or_pinned_in_requirements_ros():
    imported = code_imports()
    declared = provided_by(package_xml_keys("exec_depend"))
    pip_only = imported - declared
    assert pip_only == set(KEYS["not_in_rosdep"]), "imported but neither declared nor listed as pip-only"
    assert distributions_of(pip_only) == set(pins(ROOT / "requirements-ros.txt"))


def test_every_declared_runtime_dependency_is_imported_by_the_code():
    imported = code_imports()
    for key in package_xml_keys("exec_depend"):
        assert provided_by({key}) <= imported, f"{key} is declared but nothing imports it"


def test_test_dependencies_cover_the_tests_and_their_pytest_configuration():
    test_keys = package_xml_keys("test_depend")
    available = provided_by(package_xml_keys("exec_depend") | test_keys) | set(KEYS["not_in_rosdep"]) \
        | set(KEYS["test_only_pip"])
    assert imports_of_the_tests() - available == set()
    # setup.cfg sets pytest-timeout's `timeout`: the plugin is a test dependency of both files.
    assert re.search(r"^timeout\s*=", (ROOT / "setup.cfg").read_text(), re.MULTILINE)
    assert {"pytest", "pytest_timeout"} <= provided_by(test_keys)
    setup_call = next(node for node in ast.walk(ast.parse((ROOT / "setup.py").read_text()))
                      if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup")
    extras = ast.literal_eval(next(k.value for k in setup_call.keywords if k.arg == "extras_require"))
    assert distributions_of(provided_by(test_keys)) == {_normalised(name) for name in extras["test"]}


def test_requirements_ros_pins_what_requirements_txt_pins_and_nothing_rosdep_installs():
    ros_pins = pins(ROOT / "requirements-ros.txt")
    venv_pins = pins(ROOT / "requirements.txt")
    assert {name: venv_pins.get(name) for name in ros_pins} == ros_pins
    assert ros_pins["torch"] == venv_pins["torch"]
    from_rosdep = distributions_of(provided_by(package_xml_keys("exec_depend")) - {
        module for key in KEYS["ros_packages"] for module in KEYS["ros_packages"][key]["imports"]})
    assert from_rosdep & set(ros_pins) == set()  # e.g. no second numpy over the distro's


@pytest.mark.timeout(120)
def test_pip_accepts_requirements_ros_and_its_pins_are_the_verified_set():
    """The README's `pip install -r requirements-ros.txt`, dry and offline: the file parses and its
    pins are what this (verified) environment has installed."""
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "-r",
                           str(ROOT / "requirements-ros.txt")], capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Would install" not in done.stdout

"""The dependency rules docs/architecture.md states, checked on the source (every import, also
the ones inside functions)."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "retf_ros"


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def importers_of(prefix: str, under: str) -> list[str]:
    return sorted(str(p.relative_to(PACKAGE)) for p in (PACKAGE / under).rglob("*.py")
                  if any(name == prefix or name.startswith(prefix + ".") for name in imported_modules(p)))


def test_the_ros_package_imports_neither_bags_nor_replay():
    assert importers_of("retf_ros.replay", "ros") == []
    assert importers_of("retf_ros.bags", "ros") == []


def test_only_the_bag_player_and_recorder_import_rclpy_in_the_bags_package():
    assert importers_of("rclpy", "bags") == ["bags/player.py", "bags/recorder.py"]


def test_the_replay_package_imports_no_rclpy():
    assert importers_of("rclpy", "replay") == []


def test_training_ablation_does_not_import_the_training_commands():
    assert importers_of("retf_ros.training.commands", "training") == []


def test_the_bags_package_imports_only_what_its_docstring_allows():
    allowed = ("retf_ros.bags", "retf_ros.errors", "retf_ros.runtime", "retf_ros.data", "retf_ros.fusion",
               "retf_ros.ros.shutdown")
    used = {(str(p.relative_to(PACKAGE)), name) for p in (PACKAGE / "bags").rglob("*.py")
            for name in imported_modules(p) if name.startswith("retf_ros.")}
    assert sorted((path, name) for path, name in used
                  if not any(name == a or name.startswith(a + ".") for a in allowed)) == []
    assert {path for path, name in used if name.startswith("retf_ros.ros.")} <= {"bags/player.py", "bags/recorder.py"}

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


# -- every package: exactly what its docstring allows -------------------------------------------
# Targets are retf_ros packages or modules ("ros.params"); a module may import its own package.
SHARED = {"errors", "checkpoint", "device", "client", "param_file"}
ALLOWED = {
    "__init__": set(),
    "errors": set(),
    "client": {"errors"},
    "device": {"errors"},
    "param_file": {"errors"},
    "checkpoint": {"errors", "fusion"},
    "fusion": set(),
    "pose": {"fusion", "errors"},
    "data": {"fusion", "pose", "errors"},
    "runtime": {"fusion", "checkpoint", "device", "client", "errors"},
    "ros": {"runtime", "pose", "fusion", "checkpoint", "device", "errors", "param_file"},
    "training": {"fusion", "data", "runtime", "checkpoint", "device", "errors"},
    "bags": {"runtime", "data", "fusion", "errors"},
    "evaluation": {"training", "runtime", "bags", "data", "fusion", "checkpoint", "client", "device", "errors"},
    "harness": {"ros", "runtime", "fusion", "pose", "data"},
    "replay": {"evaluation", "bags", "harness", "runtime", "data", "ros.params", "checkpoint", "param_file",
               "errors"},
    "bench": {"fusion", "pose", "data", "runtime", "training", "evaluation", "bags", "replay", "harness", "ros",
              *SHARED},
}
# Named modules allowed more than their package (each docstring names them).
EXTRA = {
    "training/trainer.py": {"evaluation.protocol"},              # the validation MoC selects the checkpoint
    "training/erank_calibration.py": {"evaluation.json_safe"},  # `retf calibrate --json`
    "training/ablation.py": {"evaluation"},                       # `retf ablate` reports like `retf eval`
    "bags/player.py": {"ros.shutdown"},
    "bags/recorder.py": {"ros.shutdown"},
}
ROS_MODULES = ("rclpy", "builtin_interfaces", "diagnostic_msgs", "geometry_msgs", "lifecycle_msgs",
               "rcl_interfaces", "sensor_msgs", "std_msgs", "visualization_msgs")


def _source_files():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _package_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _is_cli(path: Path) -> bool:
    """The CLI layer (``cli``, ``__main__`` and each package's ``commands``) may import any package."""
    return path.name == "commands.py" or path.relative_to(PACKAGE).as_posix() in ("cli.py", "__main__.py")


def _covers(allowed: str, target: str) -> bool:
    return target == allowed or target.startswith(allowed + ".")


def test_every_package_imports_only_what_its_docstring_allows():
    assert set(ALLOWED) == {_package_of(p) for p in _source_files() if not _is_cli(p)}
    refused = []
    for path in _source_files():
        if _is_cli(path):
            continue
        own, rel = _package_of(path), path.relative_to(PACKAGE).as_posix()
        allowed = {own} | ALLOWED[own] | EXTRA.get(rel, set())
        for name in imported_modules(path):
            if name == "retf_ros" or not name.startswith("retf_ros."):
                continue
            target = name.removeprefix("retf_ros.")
            # "from retf_ros.x import y": "retf_ros.x" is checked; "retf_ros.x.y" only when y is a module
            if not (PACKAGE / target.replace(".", "/")).is_dir() and not (PACKAGE / (target.replace(".", "/") + ".py")).exists():
                continue
            if not any(_covers(a, target) for a in allowed):
                refused.append((rel, name))
    assert refused == []


def test_the_shared_leaf_modules_and_the_model_core_import_no_tooling_package():
    tooling = {"harness", "bags", "evaluation", "replay", "bench", "training"}
    for inner in ("errors", "client", "device", "param_file", "checkpoint", "fusion", "runtime", "ros", "pose"):
        assert not ALLOWED[inner] & tooling, inner


def test_only_the_nodes_the_bag_processes_and_the_harness_processes_import_rclpy_and_ros_messages():
    importers = {p.relative_to(PACKAGE).as_posix() for p in _source_files()
                 if any(name.split(".")[0] in ROS_MODULES for name in imported_modules(p))}
    assert {p for p in importers if not p.startswith("ros/")} == {
        "bags/player.py", "bags/recorder.py", "harness/probe.py", "harness/synthetic_publisher.py",
        "bench/node.py", "bench/pose.py"}   # the benchmarks: only whether rclpy is installed


def _module_graph() -> dict[str, set[str]]:
    modules = {p.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", "."): p for p in _source_files()}
    modules = {(name.removesuffix(".__init__")): p for name, p in modules.items()}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in imported_modules(path):
            target = imported.removeprefix("retf_ros.")
            if imported.startswith("retf_ros.") and target in modules and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def test_no_import_cycle_crosses_packages():
    """Where packages meet in both directions (training and evaluation), the modules still point
    one way: no chain of imports leads from a module back to itself through another package."""
    graph = _module_graph()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len({m.split(".")[0] for m in component}) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert cycles == []

"""Reading a ROS 2 node parameter file (the YAML of ``--params-file``) as dotted names.

Standard library and PyYAML only: `ros2 launch` (retf_ros.ros.launch_arguments) and the offline
replay (retf_ros.replay) both read parameter files, the first on the distro's Python.
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml

from retf_ros.errors import RetfError


def node_parameters(path: str | os.PathLike | None) -> dict:
    """The parameters of a node parameter file as dotted names (nested or dotted keys under
    ``ros__parameters``; every node section merged); {} for None."""
    if path is None:
        return {}

    try:
        document = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RetfError(f"cannot read parameter file {path}: {exc}") from exc
    params: dict = {}
    for node in document.values() if isinstance(document, dict) else ():
        if isinstance(node, dict) and isinstance(node.get("ros__parameters"), dict):
            _flatten(node["ros__parameters"], "", params)
    return params


def _flatten(tree: dict, prefix: str, out: dict) -> None:
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, f"{name}.", out)
        else:
            out[name] = value

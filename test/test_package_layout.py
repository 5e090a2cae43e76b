"""The package installs the three documented ways: its ament_python metadata is consistent."""
import importlib
import importlib.metadata
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_package_xml_is_format_3_ament_python_with_runtime_dependencies():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "retf_ros"
    assert root.find("export/build_type").text == "ament_python"
    depends = {e.text for e in root.findall("exec_depend")}
    assert {"rclpy", "sensor_msgs", "std_msgs", "geometry_msgs", "diagnostic_msgs",
            "visualization_msgs", "python3-numpy"} <= depends


def test_ament_resource_marker_and_share_folders_exist():
    assert (ROOT / "resource" / "retf_ros").is_file()
    setup_py = (ROOT / "setup.py").read_text()
    for needle in ("share/ament_index/resource_index/packages", "launch/*.launch.py", "config/*.yaml"):
        assert needle in setup_py
    assert list((ROOT / "launch").glob("*.launch.py")) and list((ROOT / "config").glob("*.yaml"))


def test_console_scripts_resolve_to_callables():
    scripts = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="console_scripts")
               if ep.value.startswith("retf_ros")}
    assert scripts == {"retf": "retf_ros.cli:main", "anticipation_node": "retf_ros.ros.node:main",
                       "pose_node": "retf_ros.ros.pose_node:main"}
    for value in scripts.values():
        module, func = value.split(":")
        assert callable(getattr(importlib.import_module(module), func))


def test_package_version_matches_metadata():
    import retf_ros
    root = ET.parse(ROOT / "package.xml").getroot()
    assert retf_ros.__version__ == root.findtext("version") == importlib.metadata.version("retf_ros")


def test_license_file_is_the_apache_2_text_that_package_xml_and_setup_py_name():
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX: How to apply the Apache License" in text
    assert ET.parse(ROOT / "package.xml").getroot().findtext("license") == "Apache-2.0"
    assert 'license="Apache-2.0"' in (ROOT / "setup.py").read_text()

"""retf_ros: an ament_python package that also installs with plain `pip install .`."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "retf_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="RGB-D + skeleton action anticipation with the Rank-enhancing Token Fuser, for ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={PACKAGE: ["checkpoints/*", "resources/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    # Loose on purpose: the Makefile installs the pinned set from requirements.txt first, and a
    # ROS 2 workspace brings its own rclpy and messages.
    install_requires=["numpy", "PyYAML", "safetensors", "torch>=2.4", "tqdm"],
    # "test" is what makes `colcon test` run pytest (without it colcon runs unittest and finds nothing).
    extras_require={"bags": ["rosbags", "mcap"], "report": ["matplotlib"], "images": ["opencv-python-headless"],
                    "test": ["pytest", "pytest-timeout"]},
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "retf = retf_ros.cli:main",
            "anticipation_node = retf_ros.ros.node:main",
            "pose_node = retf_ros.ros.pose_node:main",
        ],
    },
)

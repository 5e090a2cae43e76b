"""ros2 launch retf_ros anticipation.launch.py [namespace:=...] [params_file:=...] [device:=...]
[autostart:=true] [rgb_topic:=...] [depth_topic:=...] [skeleton_topic:=...]

Starts anticipation_node with config/anticipation.yaml (or params_file). Needs launch_ros
(a ROS 2 distro); without it run the executable directly:
anticipation_node --ros-args --params-file config/anticipation.yaml
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "retf_ros"
EXECUTABLE = "anticipation_node"
PARAMS_FILE = os.path.join("config", "anticipation.yaml")


def generate_launch_description():
    default_params = os.path.join(get_package_share_directory(PACKAGE), PARAMS_FILE)
    arguments = {
        "namespace": ("", "namespace of the node and its input topics"),
        "params_file": (default_params, "YAML parameters file"),
        "device": ("auto", "auto | cpu | cuda | cuda:N"),
        "autostart": ("true", "configure and activate on start-up"),
        "rgb_topic": ("rgb/image_raw", "RGB image topic"),
        "depth_topic": ("depth/image_raw", "depth image topic"),
        "skeleton_topic": ("skeleton", "skeleton topic (PoseArray or MarkerArray)"),
    }
    config = {name: LaunchConfiguration(name) for name in arguments}
    node = Node(
        package=PACKAGE,
        executable=EXECUTABLE,
        name=EXECUTABLE,
        namespace=config["namespace"],
        output="screen",
        parameters=[config["params_file"], {"device": config["device"], "autostart": config["autostart"]}],
        remappings=[("rgb/image_raw", config["rgb_topic"]), ("depth/image_raw", config["depth_topic"]),
                    ("skeleton", config["skeleton_topic"])],
    )
    declared = [DeclareLaunchArgument(name, default_value=default, description=description)
                for name, (default, description) in arguments.items()]
    return LaunchDescription([*declared, node])

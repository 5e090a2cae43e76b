"""ros2 launch retf_ros anticipation.launch.py [namespace:=...] [params_file:=...] [device:=...]
[autostart:=true] [rgb_topic:=...] [depth_topic:=...] [skeleton_topic:=...]
[pose:=true] [camera_info_topic:=...] [pose_params_file:=...]

Starts anticipation_node with config/anticipation.yaml (or params_file). With pose:=true it
also starts pose_node (config/pose.yaml or pose_params_file) on the same RGB and depth topics
plus camera_info_topic; pose_node publishes the 3D skeleton on skeleton_topic, which the
anticipation node reads with skeleton.layout mediapipe_33. Needs launch_ros (a ROS 2 distro);
without it run the executables directly:
anticipation_node --ros-args --params-file config/anticipation.yaml
pose_node --ros-args --params-file config/pose.yaml   (with -p skeleton.layout:=mediapipe_33 above)
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "retf_ros"
EXECUTABLE = "anticipation_node"
PARAMS_FILE = os.path.join("config", "anticipation.yaml")
POSE_EXECUTABLE = "pose_node"
POSE_PARAMS_FILE = os.path.join("config", "pose.yaml")


def generate_launch_description():
    default_params = os.path.join(get_package_share_directory(PACKAGE), PARAMS_FILE)
    default_pose_params = os.path.join(get_package_share_directory(PACKAGE), POSE_PARAMS_FILE)
    arguments = {
        "namespace": ("", "namespace of the node and its input topics"),
        "params_file": (default_params, "YAML parameters file"),
        "device": ("auto", "auto | cpu | cuda | cuda:N"),
        "autostart": ("true", "configure and activate on start-up"),
        "rgb_topic": ("rgb/image_raw", "RGB image topic"),
        "depth_topic": ("depth/image_raw", "depth image topic"),
        "skeleton_topic": ("skeleton", "skeleton topic (PoseArray or MarkerArray)"),
        "pose": ("false", "also start pose_node: the skeleton comes from the RGB-D camera"),
        "camera_info_topic": ("rgb/camera_info", "CameraInfo of the RGB image (pose:=true)"),
        "pose_params_file": (default_pose_params, "YAML parameters file of pose_node (pose:=true)"),
    }
    config = {name: LaunchConfiguration(name) for name in arguments}
    image_topics = [("rgb/image_raw", config["rgb_topic"]), ("depth/image_raw", config["depth_topic"])]

    def anticipation_node(pose_parameters: dict, condition):
        return Node(
            package=PACKAGE,
            executable=EXECUTABLE,
            name=EXECUTABLE,
            namespace=config["namespace"],
            output="screen",
            parameters=[config["params_file"], {"device": config["device"], "autostart": config["autostart"],
                                                **pose_parameters}],
            remappings=[*image_topics, ("skeleton", config["skeleton_topic"])],
            condition=condition,
        )

    pose_node = Node(
        package=PACKAGE,
        executable=POSE_EXECUTABLE,
        name=POSE_EXECUTABLE,
        namespace=config["namespace"],
        output="screen",
        parameters=[config["pose_params_file"], {"autostart": config["autostart"]}],
        remappings=[*image_topics, ("rgb/camera_info", config["camera_info_topic"]),
                    ("skeleton", config["skeleton_topic"])],
        condition=IfCondition(config["pose"]),
    )
    declared = [DeclareLaunchArgument(name, default_value=default, description=description)
                for name, (default, description) in arguments.items()]
    return LaunchDescription([*declared, anticipation_node({}, UnlessCondition(config["pose"])),
                              anticipation_node({"skeleton.type": "pose_array", "skeleton.layout": "mediapipe_33"},
                                                IfCondition(config["pose"])), pose_node])

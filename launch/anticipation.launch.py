"""ros2 launch retf_ros anticipation.launch.py [namespace:=...] [params_file:=...] [device:=...]
[autostart:=...] [checkpoint:=...] [rgb_topic:=...] [depth_topic:=...] [skeleton_topic:=...]
[pose:=true] [camera_info_topic:=...] [pose_params_file:=...]

Starts anticipation_node with config/anticipation.yaml (or params_file); with pose:=true also
pose_node (config/pose.yaml or pose_params_file), whose 3D skeleton from the RGB-D camera feeds
the anticipation node. An argument left out
leaves the parameters file's value (or the node's topic name) alone; `ros2 launch -s` lists them.
Which argument becomes which parameter or remapping is decided in
retf_ros/ros/launch_arguments.py (plain Python, tested without launch_ros); this file only turns
it into launch actions. Without a ROS 2 distro run the executable directly:
anticipation_node --ros-args --params-file config/anticipation.yaml
pose_node --ros-args --params-file config/pose.yaml   (then -p skeleton.layout:=mediapipe_33 above)
"""
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node

from retf_ros.ros.launch_arguments import LAUNCH_ARGUMENTS, PACKAGE, nodes_to_launch


def _nodes(context):
    share_dir = get_package_share_directory(PACKAGE)
    return [Node(package=PACKAGE, executable=node.executable, name=node.name, namespace=node.namespace,
                 output="screen", parameters=node.parameters, remappings=list(node.remappings))
            for node in nodes_to_launch(context.launch_configurations, share_dir)]


def generate_launch_description():
    declared = [DeclareLaunchArgument(argument.name, default_value=argument.default, description=argument.description)
                for argument in LAUNCH_ARGUMENTS]
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])

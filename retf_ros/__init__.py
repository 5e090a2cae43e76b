"""retf_ros: multi-modal action anticipation with the Rank-enhancing Token Fuser for ROS 2.

Layers (dependencies point inward): ``ros`` -> ``runtime`` -> ``fusion``;
``data`` and ``training`` -> ``fusion``. Only ``retf_ros.ros`` imports rclpy.
"""

__version__ = "0.1.0"

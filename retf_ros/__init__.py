"""retf_ros: multi-modal action anticipation with the Rank-enhancing Token Fuser for ROS 2.

Layers (dependencies point inward): ``ros`` -> ``runtime`` -> ``fusion``;
``data`` and ``training`` -> ``fusion``; ``bags`` (bag files) -> ``runtime``, ``data``;
``replay`` -> ``bags``, ``runtime``, ``training``. rclpy is imported by ``retf_ros.ros`` and by the
bag player and recorder processes (``retf_ros.bags.player`` / ``recorder``) only.
"""

__version__ = "0.1.0"

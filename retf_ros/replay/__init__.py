"""Replay of ROS 2 bags through the anticipation runtime: `retf bag eval` (offline and live runs)
and `retf demo`.

Bag files themselves (reading, writing, distro conversion, the player and recorder processes)
live in ``retf_ros.bags``, scoring and the report in ``retf_ros.evaluation``; the live run starts
the node, player and recorder as processes through ``retf_ros.harness``.

Allowed imports: ``retf_ros.evaluation``, ``retf_ros.bags``, ``retf_ros.harness``,
``retf_ros.runtime``, ``retf_ros.data``, ``retf_ros.ros.params`` (the node's parameter table, no
rclpy), ``retf_ros.checkpoint``, ``retf_ros.param_file``, ``retf_ros.errors``. Nothing here imports
rclpy.
"""

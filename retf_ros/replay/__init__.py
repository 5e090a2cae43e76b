"""Replay of ROS 2 bags through the anticipation runtime: evaluation, the report and `retf demo`.

Bag files themselves (reading, writing, distro conversion, the player and recorder processes)
live in ``retf_ros.bags``; this package imports it, ``runtime``, ``training`` (the MoC scorer) and
starts ``retf_ros.ros`` processes (live replay). Nothing here imports rclpy.
"""

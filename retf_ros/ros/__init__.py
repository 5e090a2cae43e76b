"""ROS 2 nodes and their adapters. With the bag player and recorder (retf_ros.bags), the only
code that imports rclpy (import its submodules explicitly)."""

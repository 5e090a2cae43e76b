"""ROS 2 adapters: the only package that imports rclpy (import its submodules explicitly)."""

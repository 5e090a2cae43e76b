"""ROS 2 bags (MCAP) <-> clips, replay through DDS, replay evaluation, the report and `retf demo`.

Nothing here imports rclpy: the player and the recorder are the rclpy processes in
``retf_ros/ros/bag_player.py`` and ``retf_ros/ros/bag_recorder.py``, started as subprocesses.
"""

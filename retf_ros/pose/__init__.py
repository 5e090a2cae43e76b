"""3D body landmarks from an RGB-D camera, without ROS: a 2D landmark estimator on the colour
image (``estimator``) and the lifting of its landmarks to 3D from the registered depth image
and the camera intrinsics (``lifting``). ``retf_ros.ros.pose_node`` publishes the result.

Allowed imports: ``retf_ros.fusion`` (skeleton layouts), ``retf_ros.errors``; MediaPipe (optional,
requirements-pose.txt) inside the estimator. Never rclpy."""

"""ROS 2 nodes and what they need: the anticipation node (``node``), the pose node
(``pose_node``), their shared lifecycle base (``lifecycle``), parameter tables (``params``),
QoS, topic names, diagnostics, visualisation, input checks, throttled logs, the shutdown helper
and the launch file's wiring (``launch_arguments``). Import the submodules explicitly.

Allowed imports: rclpy and the ROS message packages, ``retf_ros.runtime`` (the ROS-free
streaming runtime), ``retf_ros.pose`` (the pose node's estimator and lifting),
``retf_ros.fusion`` (skeleton layouts), ``retf_ros.checkpoint``, ``retf_ros.device``,
``retf_ros.errors``, ``retf_ros.param_file``. Nothing here imports the tooling: not ``retf_ros.harness`` (test/demo
processes), ``retf_ros.bags``, ``retf_ros.replay``, ``retf_ros.evaluation`` or ``retf_ros.training``.
"""

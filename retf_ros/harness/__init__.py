"""Test, bench and demo harness: the pieces that stand in for a robot around the nodes.

- ``loopback``: the DDS environment every harness process gets (Fast DDS on 127.0.0.1 and shared
  memory only; no rclpy);
- ``synthetic_publisher``: a synthetic RGB-D + skeleton + CameraInfo camera (``python -m``);
- ``probe``: records the node's outputs as JSON lines and drives its lifecycle and parameters
  (``python -m``);
- ``processes``: the one place that starts the node, the publisher, the probe and the bag
  processes as subprocesses, and waits for and inspects them.

Installed with the package so ``retf demo`` and ``retf bag eval --live`` work, but nothing in
``retf_ros.ros`` (the nodes) imports it.

Allowed imports: ``retf_ros.ros`` (QoS, topic names, the shutdown helper the two processes share
with the nodes), ``retf_ros.runtime`` (message conversions, frames, fault injection),
``retf_ros.fusion`` (skeleton layouts), ``retf_ros.pose`` (camera intrinsics), ``retf_ros.data``
(clip stores and PCD frames the publisher can play). rclpy and the ROS message packages are
imported ONLY by ``synthetic_publisher`` and ``probe``, inside the functions that publish or
probe, so ``loopback`` and ``processes`` work without ROS.
"""

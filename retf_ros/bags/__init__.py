"""ROS 2 bags: reading and writing, message definitions of every distro, the player and the recorder.

One home for everything that touches a bag file, used by ``retf bag``, offline and live replay
(``retf_ros.replay``) and ``retf data import bag``:

- ``conventions``: the topic names, types, frame id and metadata keys retf_ros writes and expects;
- ``bagio``: ``BagReader`` / ``BagWriter`` on rosbags (MCAP and sqlite3 storage, compressed or not);
- ``distros``: which ROS 2 distro's message definitions a bag was recorded with, and conversion
  of its messages to the definitions of the running distro;
- ``messages``: numpy frames -> rosbags messages (export); ``frames``: a bag's messages -> the
  node's synchronised ``FrameSet`` s (the node's own conversions, no DDS); ``export``: a clip
  store -> a bag; ``labels`` + ``clip_import``: bags of one recording and their labels -> clips
  (``retf data import bag``);
- ``player`` / ``recorder``: the rclpy processes that publish a bag through DDS and record topics.

Allowed imports: ``retf_ros.errors``, ``retf_ros.runtime`` (the node's message conversions and
synchroniser, themselves ROS-free), ``retf_ros.data`` (clip stores) and ``retf_ros.fusion``. rclpy
is imported ONLY by ``player`` and ``recorder``, inside the functions that publish or subscribe
(with ``retf_ros.ros.shutdown``), so every other module here - and ``retf --help`` - works without
a ROS installation. Nothing in ``retf_ros.ros`` (the nodes) imports this package.
"""

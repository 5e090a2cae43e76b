"""The streaming runtime, ROS-free: frames in, anticipations out.

``frames`` (FrameSet), ``clock`` (resampling to the model fps), ``ring`` (token ring buffer),
``predictor`` (StreamingPredictor), ``anticipation`` (timed actions + the v1 JSON document),
``health`` (effective-rank health), ``messages`` (ROS message fields -> arrays, duck-typed),
``sync`` / ``stamps`` / ``intake`` (the synchroniser and its gates), ``perturb`` (fault
injection), ``stats`` (latency summaries), ``clip_frames`` (a stored clip as the node's frame
sets), ``parameters`` / ``settings`` (the node's parameter table, plain data, and the one
function that turns parameter values into these runtime settings); device / precision selection
is ``retf_ros.device``. The node (retf_ros.ros), the bag tools and the evaluation (retf_ros.evaluation) share all
of it. Import the submodules directly: this package imports nothing itself, so the numpy-only
parts stay light.

Allowed imports: ``retf_ros.fusion``, ``retf_ros.checkpoint``, ``retf_ros.device``,
``retf_ros.client`` (the document schema), ``retf_ros.errors``. Never rclpy or any tooling package.
"""

"""The streaming runtime, ROS-free: frames in, anticipations out.

``frames`` (FrameSet), ``clock`` (resampling to the model fps), ``ring`` (token ring buffer),
``predictor`` (StreamingPredictor), ``anticipation`` (timed actions + the v1 JSON document),
``health`` (effective-rank health), ``stream_eval`` (the same predictor scored offline over
a clip store); device / precision selection is ``retf_ros.device``. The node
(retf_ros.ros) and the offline evaluators share all of it. Import the submodules directly:
this package imports nothing itself, so the numpy-only parts stay light.
"""

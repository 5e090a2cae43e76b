"""retf_ros: multi-modal action anticipation with the Rank-enhancing Token Fuser for ROS 2.

Product and tooling live in separate packages; dependencies point one way (each package's
docstring lists what it may import, test/test_import_directions.py enforces it):

- the model: ``fusion`` (pure torch) <- ``runtime`` (the ROS-free streaming predictor) <- ``ros``
  (the nodes only); ``pose`` (3D landmarks, no ROS) -> ``fusion``;
- data and training: ``data`` (clip stores) -> ``fusion``, ``pose``; ``training`` -> ``data``,
  ``fusion``, ``runtime``;
- tooling: ``bags`` (bag files, player, recorder) -> ``runtime``, ``data``; ``evaluation``
  (scoring and reports) -> ``training``, ``runtime``, ``bags``; ``replay`` (bag replay, demo) ->
  ``evaluation``, ``bags``, ``harness``; ``harness`` (test/demo processes) -> ``ros``,
  ``runtime``; ``bench`` -> anything but the CLI.
- shared leaves: ``errors``, ``checkpoint``, ``device``, ``client``, ``param_file``; the CLI
  (``cli`` and each package's ``commands``) may import any package.

Named exceptions, each enforced by module: the trainer's validation MoC, ``erank_calibration`` and
``ablation`` in ``training`` use ``evaluation`` (no evaluation module imports them back); the bag
player/recorder and ``replay.offline`` use ``ros.shutdown`` / ``ros.params``.
rclpy is imported only by ``ros``, the bag player and recorder, and the harness processes that
publish or probe (``harness.synthetic_publisher``, ``harness.probe``).
"""

__version__ = "0.1.0"

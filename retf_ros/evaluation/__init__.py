"""Scoring and reports: how good are the anticipations, and the documents that say so.

What belongs here is decided by one question: does it score predictions against ground truth or
write a report of scores? Then it is here, whatever produced the predictions (a checkpoint on a
clip store, the streaming predictor, a bag replayed offline or through DDS, the model-free prior).

- ``moc``: mean-over-classes accuracy under the long-term anticipation protocol
  (docs/method.md section 6), the one scoring loop (``score_future``) for models and the prior;
- ``branches``: is each cue-decided branch of the synthetic task anticipated;
- ``protocol``: a checkpoint run over a clip store's observation windows and scored by ``moc``
  (``retf eval``, and the trainer's validation MoC);
- ``streaming``: the node's streaming predictor fed clip by clip and scored k seconds ahead
  (``StreamScorer``, also for published documents);
- ``prior_moc``: the model-free prior (``retf_ros.training.prior``) scored like a model;
- ``eval_report``: ``retf eval``'s report over runs and seeds; ``bag_scoring`` / ``bag_report``:
  the replay report of ``retf bag eval`` (JSON + HTML);
- ``json_safe``: reports as strict JSON (NaN -> null).

Left outside on purpose: ``runtime.stats`` (latency summaries the node's diagnostics publish:
the node must not depend on this package) and ``training.prior`` (a predictor, not a score;
``training.anticipation`` combines it with the network).

Allowed imports: ``retf_ros.training`` (windows, samples, the prepared cache, the prior and the
anticipation modes the scored predictions come from; ``trainer.default_cache_dir``),
``retf_ros.runtime``, ``retf_ros.bags`` (a bag's ground truth), ``retf_ros.data``,
``retf_ros.fusion``, ``retf_ros.checkpoint``, ``retf_ros.client``, ``retf_ros.device``,
``retf_ros.errors``. Never rclpy, ``retf_ros.ros``, ``retf_ros.harness`` or ``retf_ros.replay``.
The training modules that use it (the trainer's validation MoC, ``erank_calibration``,
``ablation`` and ``commands``) are listed by name in test/test_import_directions.py; no module
of this package imports them back.
"""

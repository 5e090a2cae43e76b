"""Training: window sampling from a clip store, `retf train` (the trainer, fine-tuning, the recipe,
augmentation), the model-free prior and the anticipation modes that combine it with the network,
effective-rank calibration (`retf calibrate`) and ablations (`retf ablate`). Scoring and reports
live in ``retf_ros.evaluation``.

Allowed imports: ``retf_ros.fusion``, ``retf_ros.data``, ``retf_ros.runtime`` (the streaming
predictor and fault injection for calibration), ``retf_ros.checkpoint``, ``retf_ros.device``,
``retf_ros.errors``. ``retf_ros.evaluation`` only from ``trainer`` (validation MoC),
``erank_calibration``, ``ablation`` and ``commands`` (the CLI verbs; ``commands`` may import any
package); nothing that ``evaluation`` imports from here imports it back. Never rclpy.
"""

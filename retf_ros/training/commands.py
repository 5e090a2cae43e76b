"""`retf train`, `retf eval` and `retf ablate` (registered by retf_ros/cli.py).

Heavy imports (torch, the model) happen inside the command functions so `retf --help` is fast.
"""
from __future__ import annotations

import argparse
import json

from retf_ros.cli import add_command
from retf_ros.errors import RetfError
from retf_ros.training.config import invoked_command

TRAIN_OVERRIDES = {  # command-line option -> TrainConfig key (None values are not overrides)
    "split": "split", "modalities": "modalities", "task": "task", "fps": "fps", "window": "window",
    "horizon_s": "horizon_s", "epochs": "epochs", "batch_size": "batch_size", "lr": "lr", "seed": "seed",
    "device": "device", "threads": "threads", "cache_dir": "cache_dir", "workers": "num_workers",
    "samples_per_clip": "samples_per_clip", "fusion": "model.fusion", "exchange_ratio": "model.exchange_ratio",
    "selection": "model.exchange_selection", "modality_dropout": "model.modality_dropout", "init": "init",
    "token_activation": "model.token_activation",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    _train_options(add_command(
        subparsers, run_train, "train", help="train the R3D/RTF anticipation model on a clip store",
        description="Train on a clip store. Options override the --config YAML (see config/train_synth.yaml). "
                    "Training into an existing run directory resumes it. Runs unchanged under "
                    "`torchrun --nproc_per_node=N -m retf_ros train ...` (DistributedDataParallel)."))
    _eval_options(add_command(
        subparsers, run_eval, "eval", help="MoC table, effective ranks and streaming accuracy of checkpoints",
        description="Evaluate one or more checkpoints (runs) on a split of a clip store; with several, "
                    "every figure is the mean over them."))
    _calibrate_options(add_command(
        subparsers, run_calibrate, "calibrate",
        help="a checkpoint's effective-rank distribution on healthy data (the node's erank health)",
        description="Stream a split through the checkpoint as the node does and summarise every window's "
                    "effective ranks (percentiles). --record stores the distribution in the checkpoint's "
                    "metadata (retf train does this for its best checkpoint on the validation split); the node's "
                    "erank thresholds default to it. --input measures a faulty modality against those thresholds."))
    _ablate_options(add_command(
        subparsers, run_ablate, "ablate", help="the ablation table of docs/training.md on a clip store (mean over seeds)",
        description="Train and evaluate every fusion variant, single modality and exchange ratio for each "
                    "seed; writes ablation.md and ablation.json into --out."))


def _train_options(train: argparse.ArgumentParser) -> None:
    train.add_argument("--data", required=True, help="clip store directory")
    train.add_argument("--out", required=True, help="run directory (best.*, last.*, log.jsonl)")
    train.add_argument("--config", help="YAML file of training options")
    train.add_argument("--split", help="split name (default: the store's default split)")
    train.add_argument("--modalities", nargs="+", help="modalities to use (default: all the data has)")
    train.add_argument("--task", choices=("stream", "protocol"), help="stream (the node) or protocol (MoC protocol)")
    train.add_argument("--fps", type=float, help="model frame rate (default: the data's)")
    train.add_argument("--window", type=int, help="observed frames W")
    train.add_argument("--horizon-s", type=float, help="anticipated seconds (stream task)")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--seed", type=int)
    train.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    # = retf_ros.fusion.FUSION_KINDS, written out so that `retf --help` does not import torch
    train.add_argument("--fusion", choices=("rtf", "no_exchange", "concat", "sum", "sum_exchange"))
    train.add_argument("--exchange-ratio", type=float, help="rho: fraction of channels exchanged")
    train.add_argument("--selection", choices=("variance", "bn_gamma"), help="exchange channel selection rule")
    train.add_argument("--modality-dropout", type=float, help="probability of dropping a modality per sample")
    # = retf_ros.fusion.encoders.TOKEN_ACTIVATIONS (written out: `retf --help` does not import torch)
    train.add_argument("--token-activation", choices=("layernorm", "relu"),
                       help="how each modality embedding ends: layernorm (faithful, default) or relu (old table)")
    train.add_argument("--samples-per-clip", type=int, help="training windows per clip and epoch")
    train.add_argument("--threads", type=int, help="torch CPU threads")
    train.add_argument("--workers", type=int, help="DataLoader worker processes")
    train.add_argument("--cache-dir", help="prepared-frame cache (default ~/.cache/retf_ros/prepared)")
    train.add_argument("--init", metavar="CHECKPOINT",
                       help="fine-tune: start from this checkpoint (its architecture, encoders, fuser and temporal "
                            "model; class heads rebuilt when the data's classes differ); docs/your-data.md")


def _eval_options(evaluate: argparse.ArgumentParser) -> None:
    evaluate.add_argument("--checkpoint", nargs="+", required=True,
                          help="checkpoint(s): run directory (its best), NAME, NAME.safetensors or NAME.json")
    evaluate.add_argument("--seeds", nargs="+", type=int,
                          help="evaluate CHECKPOINT/seed_<S> for each seed (the layout `retf ablate` writes)")
    evaluate.add_argument("--data", required=True, help="clip store directory")
    evaluate.add_argument("--split", help="split name (default: the store's default split)")
    evaluate.add_argument("--part", default="test", choices=("train", "val", "test"))
    evaluate.add_argument("--json", help="write the results as JSON here")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--batch-size", type=int, default=16)
    evaluate.add_argument("--threads", type=int)
    evaluate.add_argument("--cache-dir", help="prepared-frame cache (default ~/.cache/retf_ros/prepared)")
    evaluate.add_argument("--no-streaming", action="store_true", help="skip the streaming evaluation")
    evaluate.add_argument("--stream-stride", type=int,
                          help="model frames between streaming predictions (default: every frame, as the node)")
    evaluate.add_argument("--record", action="store_true",
                          help="store the results in the checkpoint's metadata (metrics.test); one checkpoint only")


def _calibrate_options(calibrate: argparse.ArgumentParser) -> None:
    calibrate.add_argument("--checkpoint", required=True, help="run directory (its best), NAME, NAME.safetensors or NAME.json")
    calibrate.add_argument("--data", required=True, help="clip store directory")
    calibrate.add_argument("--split", help="split name (default: the store's default split)")
    calibrate.add_argument("--part", default="val", choices=("train", "val", "test"))
    calibrate.add_argument("--record", action="store_true",
                           help="store the distribution in the checkpoint's metadata (erank_distribution)")
    calibrate.add_argument("--input", action="append", default=[], metavar="MODALITY=FAULT",
                           help="feed MODALITY frozen (its first frame repeated) or as noise; repeatable")
    calibrate.add_argument("--warn-percentile", type=float, default=None,
                           help="judge windows with WARN below this recorded percentile (default: the node's)")
    calibrate.add_argument("--error-percentile", type=float, default=None,
                           help="ERROR below this recorded percentile (default: the node's)")
    calibrate.add_argument("--json", help="write the distribution and the status counts as JSON here")
    calibrate.add_argument("--device", default="cpu")
    calibrate.add_argument("--threads", type=int)


def _ablate_options(ablate: argparse.ArgumentParser) -> None:
    ablate.add_argument("--data", required=True, help="clip store directory")
    ablate.add_argument("--out", required=True, help="directory for runs and the table")
    ablate.add_argument("--config", help="YAML of training options shared by every variant")
    ablate.add_argument("--seeds", nargs="+", type=int, default=[1, 10, 13452])
    ablate.add_argument("--epochs", type=int)
    ablate.add_argument("--variants", nargs="+", help="subset of variants to run (default: all)")
    ablate.add_argument("--split")
    ablate.add_argument("--device", default="auto")
    ablate.add_argument("--threads", type=int)
    ablate.add_argument("--cache-dir")
    ablate.add_argument("--stream-stride", type=int, default=5,
                        help="model frames between streaming predictions in the evaluation (default 5)")
    ablate.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="train N runs at once, each in its own worker process (one torch thread each unless "
                             "--threads; output in OUT/<variant>/seed_<S>/ablate.log); default 1: in this process")
    ablate.add_argument("--table-only", action="store_true",
                        help="train nothing: build the table from the best.json + eval.json already under --out")


def run_train(args: argparse.Namespace) -> int:
    # the verb's work: imported when it runs, so `retf --help` stays fast
    from retf_ros.training.config import load_config
    from retf_ros.training.trainer import Trainer

    overrides = {key: getattr(args, option) for option, key in TRAIN_OVERRIDES.items()}
    config = load_config(args.config, overrides)
    best = Trainer(config, args.data, args.out, invoked_command()).run()
    print(f"best checkpoint: {best}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    # the verb's work: imported when it runs, so `retf --help` stays fast
    from retf_ros.evaluation.eval_report import evaluate_runs, format_report, resolve_runs
    from retf_ros.evaluation.json_safe import json_ready

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    runs = resolve_runs(args.checkpoint, args.seeds)
    if args.record and len(runs) != 1:
        raise RetfError("--record stores the results of ONE checkpoint; give a single --checkpoint without --seeds")
    report = evaluate_runs(runs, args.data, split=args.split, part=args.part, device=args.device,
                           batch_size=args.batch_size, cache_dir=args.cache_dir, streaming=not args.no_streaming,
                           stream_stride=args.stream_stride)
    print(format_report(report))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(json_ready(report), fh, indent=2)
        print(f"wrote {args.json}")
    if args.record:
        # the verb's work: imported when it runs, so `retf --help` stays fast
        from retf_ros.evaluation.eval_report import record_in_checkpoint

        print(f"recorded test metrics in {record_in_checkpoint(runs[0], report, invoked_command())}")
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    # the verb's work: imported when it runs, so `retf --help` stays fast
    from retf_ros.training.erank_calibration import calibrate

    faults = {}
    for item in args.input:
        modality, _, fault = item.partition("=")
        if fault not in ("frozen", "noise"):
            raise RetfError(f"--input {item!r}: expected MODALITY=frozen or MODALITY=noise")
        faults[modality] = fault
    if args.record and faults:
        raise RetfError("--record stores the distribution of healthy input; it cannot be combined with --input")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    calibrate(args.checkpoint, args.data, split=args.split, part=args.part, record=args.record, faults=faults,
              warn_percentile=args.warn_percentile, error_percentile=args.error_percentile, json_path=args.json,
              device=args.device, command=invoked_command())
    return 0


def run_ablate(args: argparse.Namespace) -> int:
    # the verb's work: imported when it runs, so `retf --help` stays fast
    from retf_ros.training.ablation import run_ablation

    run_ablation(data=args.data, out=args.out, config_path=args.config, seeds=args.seeds, epochs=args.epochs,
                 variants=args.variants, split=args.split, device=args.device, threads=args.threads,
                 cache_dir=args.cache_dir, stream_stride=args.stream_stride, table_only=args.table_only,
                 jobs=args.jobs)
    return 0

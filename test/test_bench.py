"""`make bench` / `make gpu-check` entry points: the model section prints its figures with the
machine, and the GPU check says clearly that there is no CUDA device where there is none."""
import argparse
import re
import subprocess
import sys

import pytest
import torch

from retf_ros.bench import model as model_bench


def test_model_section_prints_forward_fuser_and_per_frame_figures_with_the_machine(monkeypatch, capsys):
    monkeypatch.setattr(model_bench, "WINDOWS", (8,))
    monkeypatch.setattr(model_bench, "REPEATS", 2)
    monkeypatch.setattr(model_bench, "IMAGE_SIZES", ((24, 32),))
    threads = torch.get_num_threads()
    model_bench.run(argparse.Namespace(gpu=False))
    out = capsys.readouterr().out
    assert torch.get_num_threads() == threads  # the section's one thread does not leak
    assert re.search(r"\[model\] machine: .*1 torch threads", out)
    assert re.search(r"T=8: forward \d+\.\d+ ms \(CPU \d+\.\d+\); fuser alone \d+\.\d+ ms \(CPU \d+\.\d+\); forward_tokens .* \d+\.\d+ ms \(CPU \d+\.\d+\)", out)
    assert re.search(r"per-frame path, one VGA frame -> 24x32 .*RGB \d+\.\d+ ms \(CPU \d+\.\d+\), depth uint16 mm \d+\.\d+ ms", out)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible: the GPU check would run")
def test_gpu_check_without_cuda_exits_with_a_clear_message():
    done = subprocess.run([sys.executable, "-m", "retf_ros.bench", "--gpu"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 3
    assert "no CUDA device is visible" in done.stderr and done.stdout == ""

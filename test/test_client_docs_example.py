"""The example document in docs/anticipation-json.md is a valid v1 document (docs and schema agree)."""
from __future__ import annotations

import json
import re

from conftest import REPO_ROOT
from retf_ros.client import parse_anticipation, validate_anticipation

DOC = REPO_ROOT / "docs" / "anticipation-json.md"


def test_the_documented_example_validates_and_parses():
    blocks = re.findall(r"```json\n(.*?)\n```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1
    document = json.loads(blocks[0])
    assert validate_anticipation(document) == []
    parsed = parse_anticipation(document)
    assert parsed.modalities["depth"] == "stale" and parsed.degraded
    assert parsed.window.present["depth"] < parsed.window.frames


def test_every_field_of_the_example_is_described_in_the_table():
    text = DOC.read_text()
    document = json.loads(re.findall(r"```json\n(.*?)\n```", text, flags=re.S)[0])
    fixed_objects = ("stamp", "window", "current", "erank", "latency", "model")  # the others map names
    described = [f"`{key}" for key in document]
    described += [f"{key}.{sub}`" for key in fixed_objects for sub in document[key]]
    missing = [field for field in described if field not in text]
    assert missing == []

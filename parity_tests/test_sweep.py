"""The sweep (python -m parity_tests.sweep): no false alarm on the correct port, every planted bug caught.

The default suite runs its small slice (two configurations, every planted bug); ``--parity-full``
runs the whole sweep (32 configurations over all five blocks: about an hour on a 2-core CPU) and
holds it to the targets: 0 false alarms, >= 95% detection of each bug where it changes anything.
"""

from __future__ import annotations

import pytest

from parity_tests import sweep
from parity_tests.mutations import MUTATIONS


def detection(doc: dict, name: str) -> tuple[int, int]:
    outcomes = [r["mutations"][name] for r in doc["configs"]]
    applicable = [o for o in outcomes if o["caught_by"] is not None or o["effect"]]
    return sum(o["caught_by"] is not None for o in applicable), len(applicable)


def test_the_sweep_covers_what_it_claims():
    configs = sweep.CONFIGS
    assert len(configs) >= 30
    assert {c.layer[:6] for c in configs} == {f"block{b}" for b in range(1, 6)}
    assert min(len(c.filters) for c in configs) == 1 and max(len(c.filters) for c in configs) == 8
    assert min(c.steps for c in configs) == 10 and max(c.steps for c in configs) == 100
    assert min(c.size for c in configs) == 48 and max(c.size for c in configs) == 128
    assert len({c.seed for c in configs}) >= 5
    assert len(set(configs)) == len(configs)


def test_fast_slice(keras_vgg, torch_vgg):
    doc = sweep.sweep(keras_vgg, torch_vgg, sweep.FAST, log=lambda line: None)
    for record in doc["configs"]:
        assert record["correct"]["caught_by"] is None, f"false alarm in {record['name']}: {record['correct']['failed']}"
    for name in MUTATIONS:
        caught, applicable = detection(doc, name)
        assert caught == applicable, f"{name} missed in {applicable - caught} of {applicable} configurations"
    assert detection(doc, "lr_x1.01") == (2, 2), "the learning-rate bug changes every configuration"
    assert {r["mutations"]["lr_x1.01"]["caught_by"] for r in doc["configs"]} == {"ascent"}
    table = sweep.summarise(doc)
    assert "**Correct port: false alarms 0 / 2 configurations**" in table
    assert "| lr_x1.01: ascent learning rate 1.01 instead of 1 | 2 | 2 | 100% | ascent 2 (loss curves alone:" in table


@pytest.mark.slow
def test_full_sweep(keras_vgg, torch_vgg):
    doc = sweep.sweep(keras_vgg, torch_vgg, sweep.CONFIGS, log=lambda line: None)
    alarms = [r["name"] for r in doc["configs"] if r["correct"]["caught_by"] is not None]
    assert alarms == [], f"false alarms: {alarms}"
    for name in MUTATIONS:
        caught, applicable = detection(doc, name)
        assert applicable >= 0.5 * len(sweep.CONFIGS), f"{name} changes too few configurations to judge"
        assert caught >= 0.95 * applicable, f"{name}: caught in {caught} of {applicable}"


def test_resume_keeps_recorded_configurations_and_runs_none_of_them_again():
    config = sweep.FAST[0]
    recorded = {"name": config.name, "config": {}, "correct": {}, "mutations": {}, "seconds": 1.0}
    logged = []
    doc = sweep.sweep(None, None, [config], done=[recorded], log=logged.append)  # no model: nothing may run
    assert doc["configs"] == [recorded]
    assert logged == [f"{config.name}: kept from the interrupted run"]

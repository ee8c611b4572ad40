"""Fixtures of the DICOM node tests: the model, a node on a loopback port, objects to send."""

from __future__ import annotations

from pathlib import Path

import pytest
from node_helpers import LOOPBACK


@pytest.fixture(scope="session")
def predictor():
    from valvereader.inference.predictor import load_predictor

    return load_predictor()


@pytest.fixture
def start_node(tmp_path: Path, predictor):
    """start_node(**config) -> a started Node on 127.0.0.1 (a free port), stopped at the end."""
    from valvereader.node.scp import Allowed, Node, NodeConfig

    nodes = []

    def start(out: Path | None = None, node_predictor=None, **config):
        config.setdefault("allowed", [Allowed("MODALITY")])
        node = Node(NodeConfig(out=out or tmp_path / "out", port=0, bind=LOOPBACK, **config),
                    node_predictor or predictor)
        node.start()
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.stop()

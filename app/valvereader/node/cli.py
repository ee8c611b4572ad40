"""`valvereader serve --out DIR`: a DICOM node that reads every film it receives (docs/node.md)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for the received files (in/), results.csv, the SRs (sr/) and captures (sc/)")
    parser.add_argument("--aet", default="VALVEREADER", help="this node's AE title (default VALVEREADER)")
    parser.add_argument("--port", type=int, default=11112, help="port to listen on (default 11112)")
    parser.add_argument("--bind", default="0.0.0.0", help="address to listen on (default all)")
    parser.add_argument("--allow", action="append", default=[], metavar="AET[@HOST]",
                        help="a peer allowed to send (repeatable); no other is accepted")
    parser.add_argument("--allow-any", action="store_true", help="accept any peer (trusted networks only)")
    parser.add_argument("--send-to", metavar="AET@HOST:PORT", help="C-STORE each result (SR) to this node")
    parser.add_argument("--with-sc", action="store_true",
                        help="also write (to OUT/sc/) and send a Secondary Capture key image, not for diagnosis")
    parser.add_argument("--weights", type=Path, help="weights folder (default: the bundled weights)")
    parser.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda or mps")
    parser.add_argument("--runtime", choices=["onnx", "torch"], help="force a runtime")


def config_from(args: argparse.Namespace):
    """The NodeConfig the arguments ask for. Raises ValueError with what is wrong."""
    from .scp import Allowed, NodeConfig
    from .send import Peer, check_ae_title

    if not 0 <= args.port < 65536:
        raise ValueError(f"--port {args.port} is not a port (0 to 65535)")
    allowed = [Allowed.parse(text) for text in args.allow]
    if not allowed and not args.allow_any:
        raise ValueError("no peer would be accepted: give --allow AET[@HOST] (repeatable) or --allow-any")
    return NodeConfig(out=args.out, ae_title=check_ae_title(args.aet), port=args.port, bind=args.bind,
                      allowed=allowed, allow_any=args.allow_any,
                      send_to=Peer.parse(args.send_to) if args.send_to else None, with_sc=args.with_sc)


def run(args: argparse.Namespace) -> int:
    import logging

    from .. import DISCLAIMER
    from ..errors import ValveReaderError
    from ..inference.predictor import load_predictor
    from ..logs import RedactingFilter, setup_logging
    from .scp import Node

    try:
        config = config_from(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not any(getattr(h, "_valvereader", False) for h in logging.getLogger("valvereader").handlers):
        setup_logging()
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    console.addFilter(RedactingFilter())  # patient identifiers never reach the terminal either
    logging.getLogger("valvereader").addHandler(console)
    try:
        predictor = load_predictor(args.weights, args.device, args.runtime)
    except ValveReaderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    node = Node(config, predictor)
    try:
        node.start()
    except OSError as exc:
        print(f"error: cannot listen on {config.bind}:{config.port} or write {config.out}: {exc}", file=sys.stderr)
        node.stop()
        return 1
    peers = "any peer" if config.allow_any else ", ".join(
        a.ae_title + (f"@{a.host}" if a.host else "") for a in config.allowed)
    print(f"{DISCLAIMER}  Model: {predictor.model_name}\n{config.ae_title} listening on {config.bind}:{node.port}, "
          f"accepting {peers}; results in {config.out}"
          + (f"; sending to {config.send_to}" if config.send_to else "") + ". Ctrl-C stops.", file=sys.stderr)
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("stopping: finishing the file being read ...", file=sys.stderr)
    left = node.stop()
    print(f"stopped; {left} received file(s) left to read at the next start" if left else "stopped", file=sys.stderr)
    return 0

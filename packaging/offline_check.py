"""Did a program try to reach the network? Reads an ``strace`` log; runs in the build Python.

    strace -f -qq -e trace=connect,bind,sendto,sendmsg,sendmmsg -o TRACE COMMAND...
    python offline_check.py TRACE [--home HOME]

Every address a traced call names is checked. Allowed: Unix-domain sockets (X11, D-Bus),
netlink (the kernel) and the loopback, except port 53 there too (a name lookup through a
local resolver is still a lookup). Anything else — an IPv4/IPv6 address off the machine, a
name-server query, a raw packet socket — is reported. With ``--home``, the throw-away HOME the
program ran with must hold no ONNX Runtime usage-event files (``~/.cache/Microsoft``,
``onnxruntime.db``). Exit status 0 when nothing is found, 1 otherwise.

The program has no network feature; a DICOM peer, if one is ever configured, would be the only
address it may reach, and a check of such a run would have to allow that address explicitly.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import sys
from pathlib import Path

TRACED_CALLS = "connect,bind,sendto,sendmsg,sendmmsg"
LOCAL_FAMILIES = {"AF_UNIX", "AF_LOCAL", "AF_NETLINK", "AF_UNSPEC"}
_CALL = re.compile(r"\b(connect|bind|sendto|sendmsg|sendmmsg)\(")
_FAMILY = re.compile(r"sa_family=(AF_\w+)")
_INET = re.compile(r'sin_port=htons\((\d+)\), sin_addr=inet_addr\("([^"]+)"\)')
_INET6 = re.compile(r'sin6_port=htons\((\d+)\).*?inet_pton\(AF_INET6, "([^"]+)"')


def strace_command(log: Path | str) -> list[str]:
    """The strace prefix that writes what :func:`network_attempts` reads (threads and children)."""
    return ["strace", "-f", "-qq", "-s", "96", "-e", f"trace={TRACED_CALLS}", "-o", str(log)]


def _loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


def network_attempts(trace: str) -> list[str]:
    """The strace lines in which the program names an address off the machine or port 53."""
    found: list[str] = []
    for line in trace.splitlines():
        if not _CALL.search(line):
            continue
        for family in _FAMILY.findall(line):
            if family in LOCAL_FAMILIES:
                continue
            if family in {"AF_INET", "AF_INET6"}:
                match = (_INET if family == "AF_INET" else _INET6).search(line)
                if match and _loopback(match.group(2)) and int(match.group(1)) != 53:
                    continue
            found.append(line.strip()[:240])
            break
    return found


def telemetry_files(home: Path) -> list[Path]:
    """ONNX Runtime's usage-event queue, device id and anything else under ~/.cache/Microsoft."""
    microsoft = Path(home) / ".cache" / "Microsoft"
    hits = [microsoft] if microsoft.exists() else []
    hits += sorted(p for p in Path(home).rglob("onnxruntime.db") if microsoft not in p.parents)
    return hits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("--home", type=Path, help="the throw-away HOME the program ran with")
    args = parser.parse_args(argv)
    text = args.trace.read_text(errors="replace")
    problems = [f"network: {line}" for line in network_attempts(text)]
    if args.home is not None:
        problems += [f"usage-event file: {path}" for path in telemetry_files(args.home)]
    calls = sum(1 for line in text.splitlines() if _CALL.search(line))
    for problem in problems[:20]:
        print(problem)
    print(f"{calls} socket calls traced, {len(problems)} reaching beyond the machine or leaving usage events")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

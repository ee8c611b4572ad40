"""Nothing leaves the workstation: the program, traced with strace, names no address off the
machine and looks up no name, and ONNX Runtime leaves no usage-event queue in HOME.

Each run has a throw-away HOME and, where ``unshare -n`` works (root), a private network
namespace with only the loopback, so that even a failing check sends nothing out. The window
runs under Xvfb on the xcb platform (the libraries a desktop session loads: X11, D-Bus,
fontconfig, the GTK theme plugin where present) and stays open past ONNX Runtime's first
upload attempt (about 11 s after it loads). packaging/offline_check.py reads the strace log;
packaging/smoke_test.sh runs the same check on the desktop bundle.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
SAMPLE = ROOT / "resources" / "samples" / "composite_integra_dp.dcm"
PAST_FIRST_UPLOAD_S = 16  # ONNX Runtime 1.32 looks up its event server ~11 s after it loads


def _offline_check():
    spec = importlib.util.spec_from_file_location("offline_check", PACKAGING / "offline_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


offline_check = _offline_check()


def _works(*argv: str) -> bool:
    try:
        return subprocess.run(list(argv), check=False, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _need_strace() -> None:
    if not shutil.which("strace") or not _works("strace", "-f", "-qq", "-o", os.devnull, "true"):
        pytest.skip("strace missing or not permitted here (scripts/install-system-deps.sh installs it)")


def _namespace() -> list[str]:
    """A private network namespace (loopback only) where allowed, else nothing."""
    return ["unshare", "-n"] if shutil.which("unshare") and _works("unshare", "-n", "true") else []


def _environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
           "XDG_RUNTIME_DIR": str(runtime), "VALVEREADER_CONFIG_DIR": str(tmp_path / "config")}
    env.update(extra)
    return env


def _verdict(tmp_path: Path, trace: Path) -> tuple[list[str], list[Path], str]:
    text = trace.read_text(errors="replace") if trace.exists() else ""
    return offline_check.network_attempts(text), offline_check.telemetry_files(tmp_path / "home"), text


def test_network_attempts_reads_strace_lines():
    sample = [
        '7597  connect(8, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16) = 0',
        ('7597  sendto(8, "\\211\\352\\1\\0\\6mobile\\6events"..., 50, MSG_NOSIGNAL, {sa_family=AF_INET6, '
         'sin6_port=htons(443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "2603:1030::1", &sin6_addr), '
         'sin6_scope_id=0}, 28) = 50'),
        '81  connect(3, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16) = 0',
        '82  connect(4, {sa_family=AF_INET, sin_port=htons(6000), sin_addr=inet_addr("127.0.0.1")}, 16) = 0',
        ('83  connect(5, {sa_family=AF_INET6, sin6_port=htons(8080), sin6_flowinfo=htonl(0), '
         'inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0'),
        '84  connect(6, {sa_family=AF_UNIX, sun_path=@"/tmp/.X11-unix/X99"}, 20) = 0',
        '85  bind(7, {sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}, 12) = 0',
        '86  bind(8, {sa_family=AF_INET, sin_port=htons(11112), sin_addr=inet_addr("0.0.0.0")}, 16) = 0',
        '87  sendto(9, "x", 1, 0, NULL, 0) = 1',
    ]
    found = offline_check.network_attempts("\n".join(sample))
    assert [line.split()[0] for line in found] == ["7597", "7597", "81", "86"]


def test_telemetry_files(tmp_path):
    assert offline_check.telemetry_files(tmp_path) == []
    (tmp_path / ".cache" / "valvereader").mkdir(parents=True)
    assert offline_check.telemetry_files(tmp_path) == []
    queue = tmp_path / ".cache" / "Microsoft" / "DeveloperTools" / ".onnxruntime"
    queue.mkdir(parents=True)
    (queue / "onnxruntime.db").write_bytes(b"")
    assert offline_check.telemetry_files(tmp_path) == [tmp_path / ".cache" / "Microsoft"]


def _traced(tmp_path: Path, argv: list[str], env: dict[str, str], seconds: int) -> subprocess.CompletedProcess:
    trace = tmp_path / "net.trace"
    command = _namespace() + offline_check.strace_command(trace) + ["timeout", "-s", "TERM", str(seconds)] + argv
    return subprocess.run(command, check=False, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=seconds + 60)


@pytest.mark.slow
def test_detector_sees_onnx_runtime_uploader_when_left_on(tmp_path):
    """The check is not blind: ONNX Runtime imported without valvereader (and so without
    ORT_DISABLE_TELEMETRY) is caught looking up its event server and queueing events."""
    _need_strace()
    if not _namespace():
        pytest.skip("no private network namespace here: the uploader must not be let out for real")
    pytest.importorskip("onnxruntime")
    env = _environment(tmp_path)
    code = (f"import time, onnxruntime as ort; ort.InferenceSession({str(ROOT / 'weights' / 'locator.onnx')!r}, "
            "providers=['CPUExecutionProvider']); time.sleep(60)")
    if not (ROOT / "weights" / "locator.onnx").is_file():
        code = "import time, onnxruntime; time.sleep(60)"
    _traced(tmp_path, [sys.executable, "-c", code], env, PAST_FIRST_UPLOAD_S)
    network, files, _ = _verdict(tmp_path, tmp_path / "net.trace")
    if not network and not files:
        import onnxruntime

        pytest.skip(f"ONNX Runtime {onnxruntime.__version__} here has no usage-event uploader")
    assert network and files, (network, files)


@pytest.mark.slow
def test_classify_reaches_nothing_and_leaves_no_usage_events(tmp_path):
    _need_strace()
    if not SAMPLE.is_file():
        pytest.skip(f"no sample {SAMPLE.name}")
    env = _environment(tmp_path, QT_QPA_PLATFORM="offscreen")
    out = tmp_path / "result.csv"
    result = _traced(tmp_path, [sys.executable, "-m", "valvereader", "classify", str(SAMPLE), "--device", "cpu",
                                "--output", str(out)], env, 120)
    network, files, text = _verdict(tmp_path, tmp_path / "net.trace")
    assert text, "strace wrote nothing"
    assert network == [], network
    assert files == [], files
    # it did run the networks (or said clearly that weights are missing)
    assert out.is_file() or "weights" in (result.stdout + result.stderr).lower(), result.stderr[-2000:]


WINDOW_SCRIPT = """
trace=$1; seconds=$2; windows=$3; shift 3
"$@" &
pid=$!
sleep $((seconds - 4))
xwininfo -root -tree > "$windows" 2>&1
wait $pid
exit 0
"""


@pytest.mark.slow
@pytest.mark.gui
def test_window_reaches_nothing_and_names_its_class(tmp_path):
    """The window under Xvfb opens a sample and stays open past the first upload attempt: no
    lookup, no address off the machine, no usage events; its X11 class is the desktop file's
    StartupWMClass."""
    _need_strace()
    for tool in ("xvfb-run", "xwininfo"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} missing (scripts/install-system-deps.sh installs it)")
    if not SAMPLE.is_file():
        pytest.skip(f"no sample {SAMPLE.name}")
    script = tmp_path / "window.sh"
    script.write_text(WINDOW_SCRIPT)
    trace, windows = tmp_path / "net.trace", tmp_path / "windows.txt"
    seconds = PAST_FIRST_UPLOAD_S + 10  # start-up of the window before ONNX Runtime loads
    env = _environment(tmp_path, QT_QPA_PLATFORM="xcb")
    app = offline_check.strace_command(trace) + ["timeout", "-s", "TERM", str(seconds),
                                                 sys.executable, "-m", "valvereader", "view", str(SAMPLE)]
    command = _namespace() + ["xvfb-run", "-a", "-s", "-nolisten tcp -screen 0 1600x1000x24",
                              "bash", str(script), str(trace), str(seconds), str(windows)] + app
    result = subprocess.run(command, check=False, env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=seconds + 90)
    network, files, text = _verdict(tmp_path, trace)
    assert text, f"strace wrote nothing: {result.stderr[-2000:]}"
    assert network == [], network
    assert files == [], files
    assert "AF_UNIX" in text, "the window never reached the X server"
    listing = windows.read_text()
    classes = set(re.findall(r'\("([^"]*)" "([^"]*)"\)', listing))
    desktop = (PACKAGING / "valvereader.desktop").read_text()
    wm_class = re.search(r"^StartupWMClass=(.+)$", desktop, re.MULTILINE).group(1)
    assert any(wm_class in pair for pair in classes), (wm_class, classes, result.stderr[-2000:])


@pytest.mark.slow
def test_dicom_node_reaches_only_its_configured_loopback(tmp_path):
    """`valvereader serve`, the one part that uses the network, listening on the loopback with a
    loopback peer: past the first upload attempt it has bound its own socket and nothing else,
    looked up no name, and left no usage events."""
    _need_strace()
    pytest.importorskip("pynetdicom")
    env = _environment(tmp_path)
    result = _traced(tmp_path, [sys.executable, "-m", "valvereader", "serve", "--out", str(tmp_path / "node"),
                                "--bind", "127.0.0.1", "--port", "0", "--allow", "PACS@127.0.0.1",
                                "--send-to", "PACS@127.0.0.1:11113", "--device", "cpu"],
                     env, PAST_FIRST_UPLOAD_S + 4)
    network, files, text = _verdict(tmp_path, tmp_path / "net.trace")
    assert "listening on 127.0.0.1" in result.stderr, result.stderr[-2000:]
    assert network == [], network
    assert files == [], files
    assert re.search(r'bind\(\d+, \{sa_family=AF_INET, sin_port=htons\(\d+\), sin_addr=inet_addr\("127\.0\.0\.1"\)', text), \
        "the node never bound its loopback socket"

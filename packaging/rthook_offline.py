"""PyInstaller runtime hook: runs in the frozen bundle before its entry script imports anything.

ONNX Runtime's official wheels (1.32) upload usage events to Microsoft and queue them in
~/.cache/Microsoft/DeveloperTools/.onnxruntime/ unless ORT_DISABLE_TELEMETRY=1 is in the
environment when the library loads. valvereader/__init__.py sets it too; this hook makes the
bundle independent of import order. Set unconditionally: the bundle sends nothing anywhere.
"""

import os

os.environ["ORT_DISABLE_TELEMETRY"] = "1"

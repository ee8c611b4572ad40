"""Shunt Valve Reader: identifies VP-shunt valves on skull X-rays.

Decision support only, not for diagnostic use.
"""

import os as _os

# Nothing leaves the workstation. The official ONNX Runtime wheels (1.32) send usage events to
# Microsoft (a lookup of mobile.events.data.microsoft.com about 11 s after a model is loaded)
# and queue them in ~/.cache/Microsoft/DeveloperTools/.onnxruntime/. Only this variable, set
# before onnxruntime is imported, stops the uploader, the queue and the device identifier for the
# whole process; onnxruntime.disable_telemetry_events() does not. Every entry point imports this
# package before onnxruntime, and child processes inherit the variable. It is set
# unconditionally: a value of 0 in the user's environment does not turn the uploader back on.
_os.environ["ORT_DISABLE_TELEMETRY"] = "1"

__version__ = "0.1.0"
DISCLAIMER = "Decision support only \u2013 not for diagnostic use."

"""Shunt Valve Reader: identifies VP-shunt valves on skull X-rays.

Decision support only, not for diagnostic use.
"""

__version__ = "0.1.0"
DISCLAIMER = "Decision support only \u2013 not for diagnostic use."

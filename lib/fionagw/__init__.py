"""fionagw: a research DICOM gateway in the shape of FIONA.

This module must stay importable with the standard library alone: the launcher
imports it before the virtualenv exists.
"""

__version__ = "0.1.0"

"""Shared pytest setup, installed before any test module is imported: quiet TensorFlow's C++
logging, and the Google client libraries' notice about Python 3.11's end of life.

``make test`` runs pytest with ``-p no:warnings``, so pytest.ini's ``filterwarnings`` do not
apply; without the filter below, importing Beam's GCP I/O (``csp_cli`` does, through the
pipeline commands) prints four ``FutureWarning``s from ``google.api_core`` before the first test.
PYTHONWARNINGS carries the same filter into the subprocesses tests start.
"""

import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Their notices about Python's end of life come from google.api_core's version checks; the
# text depends on the date, the issuing modules do not.
_NOTICE_MODULES = ("google.api_core._python_version_support",
                   "google.api_core._python_package_support")
for _module in _NOTICE_MODULES:
    warnings.filterwarnings("ignore", category=FutureWarning, module=_module.replace(".", r"\."))
_FILTERS = [f"ignore::FutureWarning:{m}" for m in _NOTICE_MODULES]
_env = [w for w in os.environ.get("PYTHONWARNINGS", "").split(",") if w]
os.environ["PYTHONWARNINGS"] = ",".join(_env + [f for f in _FILTERS if f not in _env])

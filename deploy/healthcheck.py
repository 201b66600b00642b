"""The container's HEALTHCHECK: healthy while the host answers 200 on /__steppe/ready (STEPPE_PORT, else 3000)."""

import os
import sys
import urllib.request

port = os.environ.get("STEPPE_PORT") or "3000"
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/__steppe/ready", timeout=4) as answer:
        sys.exit(0 if answer.status == 200 else 1)
except OSError:  # refused, timed out, or an HTTP error status (503 while not ready)
    sys.exit(1)

"""`giftcast loadtest` as a script: `.venv/bin/python scripts/loadtest.py [flags]`.

The load tester lives in the package (`server/loadtest/`) so that a plain install has it;
this file only puts the repository on `sys.path` and calls it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.loadtest.main import main

if __name__ == "__main__":
    sys.exit(main())

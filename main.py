"""Launch convviz: ``python main.py [--image PATH] [--model SPEC] [--view NAME] [--screenshot PNG]``."""
import time

STARTED_AT = time.perf_counter()  # first thing: start-up time is measured from here

import sys  # noqa: E402

from convviz.app import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(started_at=STARTED_AT, exit_process=True))

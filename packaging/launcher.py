"""The frozen bundle's one program: `hashlens`, or the window when started as `hashlens-gui`."""

import multiprocessing
import os
import sys

if __name__ == "__main__":
    # Training a folder hashes in a process pool: in a frozen program each worker starts
    # this same executable, which must become a worker instead of the application.
    multiprocessing.freeze_support()
    from ui.main import cli, main

    started_as = os.path.basename(sys.argv[0]).lower().removesuffix(".exe")
    sys.exit(main() if started_as == "hashlens-gui" else cli())

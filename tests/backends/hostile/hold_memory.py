"""A hidden-lane run that encodes bits in the host's free memory while another run reads it:
for each bit of PATTERN, holds MEGABYTES of touched memory (1) or none (0) for SECONDS."""
import os
import time

megabytes = int(os.environ["MEGABYTES"])
seconds = float(os.environ["SECONDS"])
for bit in os.environ["PATTERN"]:
    block = bytearray(megabytes * 1024 * 1024) if bit == "1" else None
    if block is not None:
        block[::4096] = b"x" * len(block[::4096])  # touch every page
    print("holding", len(block or b""), flush=True)
    time.sleep(seconds)
    del block

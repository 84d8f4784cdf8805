"""Fails with exit code 3 after writing a valid-looking file."""
import sys

with open("/output/predictions.csv", "w") as f:
    f.write("id,score\n1,0.5\n")
sys.exit(3)

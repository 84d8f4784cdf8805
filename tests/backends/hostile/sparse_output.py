"""Creates a 100 GB sparse file in /output: no blocks used, but huge if copied naively."""
with open("/output/predictions.csv", "w") as f:
    f.write("id,score\n1,0.5\n")
with open("/output/sparse.bin", "wb") as f:
    f.truncate(100 * 1024**3)

"""Allocates (and touches) 10 GB in 64 MB chunks."""
chunks = []
for _ in range(160):
    chunks.append(b"x" * (64 * 1024 * 1024))
print("allocated", len(chunks))

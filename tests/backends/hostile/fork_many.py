"""A hidden-lane run that encodes a value in the host's fork counter: forks FORKS children
(each exits at once), one after another."""
import os

forks = int(os.environ["FORKS"])
for _ in range(forks):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
print("forked", forks)

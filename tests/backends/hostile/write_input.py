"""Tries to tamper with the input, the submission and the root fs, then predicts anyway."""
import json
import os


def attempt(action):
    try:
        action()
        return "succeeded"
    except OSError as exc:
        return f"failed: {exc.__class__.__name__}: {exc.strerror}"


def append(path):
    def action():
        with open(path, "a") as f:
            f.write("tampered\n")
    return action


report = {
    "append_input": attempt(append("/input/features.csv")),
    "create_in_input": attempt(append("/input/planted.csv")),
    "delete_input": attempt(lambda: os.remove("/input/features.csv")),
    "write_submission": attempt(append("/submission/predict.py")),
    "write_root": attempt(append("/etc/planted")),
    "write_usr": attempt(append("/usr/lib/python3/dist-packages/sitecustomize.py")),
}
with open("/output/report.json", "w") as f:
    json.dump(report, f)
with open("/output/predictions.csv", "w") as f:
    f.write("id,score\n1,0.5\n")

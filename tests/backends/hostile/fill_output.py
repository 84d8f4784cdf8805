"""Writes up to 5 GB into /tmp and then into /output, recording how far each got."""
import json

CHUNK = b"\0" * (1024 * 1024)


def fill(path):
    written = 0
    try:
        with open(path, "wb") as f:
            for _ in range(5 * 1024):
                f.write(CHUNK)
                written += len(CHUNK)
            f.flush()
        return written, "no error"
    except OSError as exc:
        return written, f"{exc.__class__.__name__}: {exc.strerror}"


tmp_written, tmp_error = fill("/tmp/fill")
report = {"tmp_written": tmp_written, "tmp_error": tmp_error}
# Report first: /output is about to be full.
with open("/output/report.json", "w") as f:
    json.dump(report, f)
out_written, out_error = fill("/output/fill")
print(json.dumps({**report, "output_written": out_written, "output_error": out_error}))

"""Tries to reach anything: loopback, the host's bridge, a public IP, DNS."""
import json
import os
import socket


def attempt(action):
    try:
        action()
        return "succeeded"
    except OSError as exc:
        return f"failed: {exc.__class__.__name__}: {exc}"


def connect(host, port):
    def action():
        with socket.create_connection((host, port), timeout=3):
            pass
    return action


port = int(os.environ.get("CANARY_PORT", "80"))
report = {
    "loopback": attempt(connect("127.0.0.1", port)),
    "docker_bridge": attempt(connect("172.17.0.1", port)),
    "public_ip": attempt(connect("1.1.1.1", 53)),
    "dns": attempt(lambda: socket.getaddrinfo("example.com", 443)),
    # from the kernel, not /sys/class/net (masked under runc: sysfs holds host counters)
    "interfaces": sorted(name for _, name in socket.if_nameindex()),
}
with open("/output/report.json", "w") as f:
    json.dump(report, f)

#!/usr/bin/env python3
"""partnerwatch beside its peers: the same N notifications sent to the same local webhook
sink, in one run, through

- partnerwatch: `partnerwatch poll` against its simulator, in which N referrals have just
  arrived, with a rule that sends each `referral.new` to a webhook channel (sweep, detection,
  rules, the outbox and the sends: everything it does for a notification);
- Prometheus Alertmanager (`apt-get install prometheus-alertmanager`): N alerts posted to
  `/api/v2/alerts`, each its own group, to a webhook receiver;
- Apprise (`pip install apprise`): `Apprise.notify` N times to `json://`.

Prints, for each, the wall time until the sink held all N, the CPU seconds and the peak RSS of
the peer's own process, then the ratios against partnerwatch. A peer that is not installed
is named and skipped. Not part of CI: `python3 benches/peers.py [--messages N]
[--partnerwatch target/release/partnerwatch]` (build it first: `cargo build --release`).
"""

import argparse
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


class Sink:
    """A webhook sink counting what each peer (by path) delivered."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The answer in one segment: written piecemeal on a kept-alive connection, its
            # last piece would wait for the client's delayed ACK (40 ms a request).
            disable_nagle_algorithm = True
            wbufsize = 1 << 16

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                self.rfile.read(length)
                with sink.lock:
                    sink.counts[self.path] = sink.counts.get(self.path, 0) + 1
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client that drops its kept-alive connection

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def count(self, path):
        with self.lock:
            return self.counts.get(path, 0)

    def wait_for(self, path, n, timeout=300):
        deadline = time.monotonic() + timeout
        while self.count(path) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{path}: only {self.count(path)} of {n} arrived")
            time.sleep(0.005)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid):
    """CPU seconds (user + system) of a running process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_hwm_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_measured(cmd, **kw):
    """Runs `cmd` to its end: (wall seconds, CPU seconds, peak RSS MB, stdout)."""
    started = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - started
    if status != 0:
        raise RuntimeError(f"{cmd[0]} failed: {err.decode(errors='replace')[-2000:]}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, out.decode()


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def post_json(url, body):
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def partnerwatch(binary, sink, n, work):
    if not os.path.exists(binary):
        return None, f"{binary} not found (build it: cargo build --release)"
    sim_port = free_port()
    sim = subprocess.Popen(
        [binary, "simulate", "--port", str(sim_port), "--referrals", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        # It prints a configuration to point at it: the token, then the Referrals base_url.
        token = base = None
        for line in sim.stdout:
            key, _, value = line.strip().partition(": ")
            if key == "static_token":
                token = value
            elif key == "base_url" and token and base is None:
                base = value
                break
        os.makedirs(f"{work}/rules")
        os.makedirs(f"{work}/templates")
        with open(f"{work}/rules/all.yaml", "w") as f:
            f.write("- name: arrivals\n  on: referral.new\n  channels: [hook]\n  template: any\n")
        with open(f"{work}/templates/any.text.hbs", "w") as f:
            f.write("{{kind}} {{entity_id}}\n")
        config = f"{work}/partnerwatch.yaml"
        with open(config, "w") as f:
            f.write(
                f"state_dir: ./state\nlisten: \"off\"\nauth:\n  static_token: {token}\n"
                f"sources:\n  referrals:\n    base_url: {base}\n"
                f"channels:\n  hook: {{ type: webhook, url: \"{sink.url}/partnerwatch\" }}\n"
                "rules: ./rules\ntemplates: ./templates\n"
            )
        run_measured([binary, "--config", config, "-q", "poll"])  # the baseline (empty)
        post_json(f"http://127.0.0.1:{sim_port}/_sim/referrals", {"count": n})
        wall, cpu, rss, _ = run_measured([binary, "--config", config, "-q", "poll"])
        sink.wait_for("/partnerwatch", n, timeout=5)
        return (wall, cpu, rss), None
    finally:
        sim.kill()
        sim.wait()


def alertmanager(sink, n, work):
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if not binary:
        return None, "not installed (apt-get install prometheus-alertmanager)"
    port = free_port()
    with open(f"{work}/alertmanager.yml", "w") as f:
        f.write(
            "route:\n  receiver: hook\n  group_by: ['...']\n  group_wait: 0s\n"
            "  group_interval: 1m\n  repeat_interval: 24h\n"
            f"receivers:\n  - name: hook\n    webhook_configs:\n"
            f"      - url: {sink.url}/alertmanager\n        send_resolved: false\n"
        )
    am = subprocess.Popen(
        [
            binary,
            f"--config.file={work}/alertmanager.yml",
            f"--storage.path={work}/am-data",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                get(f"http://127.0.0.1:{port}/-/ready")
                break
            except Exception:
                if time.monotonic() > deadline:
                    return None, "did not become ready in 30 s"
                time.sleep(0.05)
        cpu0 = proc_cpu(am.pid)
        started = time.monotonic()
        batch = 100
        for first in range(0, n, batch):
            alerts = [
                {
                    "labels": {"alertname": "referral_new", "referral": f"r{i}"},
                    "annotations": {"summary": f"alertmanager {i}"},
                }
                for i in range(first, min(first + batch, n))
            ]
            post_json(f"http://127.0.0.1:{port}/api/v2/alerts", alerts)
        sink.wait_for("/alertmanager", n)
        wall = time.monotonic() - started
        return (wall, proc_cpu(am.pid) - cpu0, proc_hwm_mb(am.pid)), None
    finally:
        am.kill()
        am.wait()


def apprise(sink, n):
    try:
        import apprise  # noqa: F401
    except ImportError:
        return None, "not installed (pip install apprise)"
    script = (
        "import apprise, sys\n"
        "a = apprise.Apprise()\n"
        f"a.add('json://127.0.0.1:{sink.url.rsplit(':', 1)[1]}/apprise')\n"
        f"for i in range({n}):\n"
        "    assert a.notify(title=f'apprise {i}', body='x')\n"
    )
    wall, cpu, rss, _ = run_measured([sys.executable, "-c", script])
    sink.wait_for("/apprise", n, timeout=5)
    return (wall, cpu, rss), None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument(
        "--partnerwatch",
        default=os.path.join(HERE, "..", "target", "release", "partnerwatch"),
    )
    args = parser.parse_args()
    n = args.messages
    sink = Sink()
    results = {}
    with tempfile.TemporaryDirectory() as work:
        for name, run in [
            ("partnerwatch", lambda: partnerwatch(args.partnerwatch, sink, n, f"{work}/pw")),
            ("alertmanager", lambda: alertmanager(sink, n, work)),
            ("apprise", lambda: apprise(sink, n)),
        ]:
            measured, missing = run()
            if missing:
                print(f"{name}: skipped, {missing}")
                continue
            results[name] = measured
            wall, cpu, rss = measured
            print(
                f"{name}: messages={n} wall_s={wall:.3f} cpu_s={cpu:.3f} peak_rss_mb={rss:.1f}"
            )
    if "partnerwatch" in results:
        wall, cpu, rss = results["partnerwatch"]
        for name, (w, c, r) in results.items():
            if name != "partnerwatch":
                print(
                    f"partnerwatch/{name}: wall={wall / w:.2f}x cpu={cpu / c:.2f}x rss={rss / r:.2f}x"
                )


if __name__ == "__main__":
    main()

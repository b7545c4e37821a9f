#!/usr/bin/env python3
"""The idle daemon's memory: `partnerwatch run` with one Referrals source (a baseline of 250
referrals from the simulator, the shipped rules and templates, a console and an inbox channel,
a weekly digest), once without `actions` and once with the Telegram listener of `actions`
long-polling a Bot API stand-in that answers each `getUpdates` after 5 s, side by side.

Each round starts a simulator afresh, starts every daemon against it, and reads each one's
`/proc/PID/status` at 60 s and at 105 s: `VmRSS`, `VmHWM`, `RssAnon` (heap and stacks) and
`RssFile` (pages mapped from files: the program's code and constants, libc). MB are MiB, as
in the other benchmarks. Several `--partnerwatch` binaries run side by side in each round, to
compare builds. Not part of CI: `python3 benches/idle.py [--rounds N]
[--partnerwatch target/release/partnerwatch ...]` (build it first: `cargo build --release`).
"""

import argparse
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
from peers import free_port  # noqa: E402


class BotApi:
    """A Telegram Bot API stand-in: `getUpdates` answers with no updates after 5 s (a long
    poll), sends answer with a message, anything else with `true`."""

    def __init__(self):
        sent = [0]

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                method = self.path.rsplit("/", 1)[-1].lower()
                if method == "getupdates":
                    time.sleep(5)
                    result = []
                elif method.startswith("send") or method.startswith("edit"):
                    sent[0] += 1
                    result = {
                        "message_id": sent[0],
                        "date": int(time.time()),
                        "chat": {"id": -100123, "type": "supergroup", "title": "sales"},
                        "text": "",
                    }
                else:
                    result = True
                body = json.dumps({"ok": True, "result": result}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a daemon stopped while its long poll was open

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def start_simulator(binary, referrals):
    port = free_port()
    sim = subprocess.Popen(
        [binary, "simulate", "--port", str(port), "--referrals", str(referrals)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    # It prints a configuration to point at it: the token, then the Referrals base_url.
    token = base = None
    for line in sim.stdout:
        key, _, value = line.strip().partition(": ")
        if key == "static_token":
            token = value
        elif key == "base_url" and token:
            base = value
            break
    return sim, token, base


def config(work, token, base, bot_api):
    text = (
        "state_dir: ./state\ntimezone: Europe/Berlin\nlisten: 127.0.0.1:0\n"
        f"auth:\n  static_token: {token}\n"
        f"sources:\n  referrals:\n    base_url: {base}\n    every: 5m\n"
        "channels:\n  log: { type: console }\n  inbox: { type: inbox, dir: ./inbox }\n"
    )
    if bot_api:
        text += (
            '  chat: { type: telegram, bot_token: "123456:ABCdef", chat_id: "-100123", '
            f'api_url: "{bot_api}" }}\n'
        )
    text += (
        f"rules: {ROOT}/rules\ntemplates: {ROOT}/templates\n"
        'digests:\n  - name: weekly\n    schedule: "0 8 * * MON"\n    channels: [inbox]\n'
    )
    if bot_api:
        text += "actions:\n  telegram:\n    channel: chat\n    allow: [1]\n"
    os.makedirs(work)
    path = f"{work}/partnerwatch.yaml"
    with open(path, "w") as f:
        f.write(text)
    return path


def status_mb(pid):
    """VmRSS, VmHWM, RssAnon and RssFile of a running process, in MiB."""
    wanted = {"VmRSS:": 0.0, "VmHWM:": 0.0, "RssAnon:": 0.0, "RssFile:": 0.0}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, *rest = line.split()
            if key in wanted:
                wanted[key] = int(rest[0]) / 1024
    return wanted


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--referrals", type=int, default=250)
    parser.add_argument("--partnerwatch", action="append")
    args = parser.parse_args()
    binaries = [
        os.path.abspath(b)
        for b in args.partnerwatch or [os.path.join(ROOT, "target", "release", "partnerwatch")]
    ]
    for binary in binaries:
        if not os.path.exists(binary):
            sys.exit(f"{binary} not found (build it: cargo build --release)")
    bot_api = BotApi()
    for round_ in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory() as work:
            sim, token, base = start_simulator(binaries[0], args.referrals)
            daemons = []
            try:
                for b, binary in enumerate(binaries):
                    for actions in (False, True):
                        dir_ = f"{work}/{b}-{'on' if actions else 'off'}"
                        path = config(dir_, token, base, bot_api.url if actions else None)
                        log = open(f"{dir_}/run.log", "w")
                        proc = subprocess.Popen(
                            [binary, "--config", path, "run"], cwd=dir_, stdout=log, stderr=log
                        )
                        daemons.append((binary, actions, dir_, proc))
                started = time.monotonic()
                for at in (60, 105):
                    time.sleep(max(0.0, started + at - time.monotonic()))
                    for binary, actions, dir_, proc in daemons:
                        if proc.poll() is not None:
                            sys.exit(f"{binary} stopped early: see {dir_}/run.log")
                        m = status_mb(proc.pid)
                        inbox = f"{dir_}/inbox"
                        inbox = len(os.listdir(inbox)) if os.path.isdir(inbox) else 0
                        print(
                            f"idle round={round_} t={at} actions={'on' if actions else 'off'} "
                            f"rss_mb={m['VmRSS:']:.1f} hwm_mb={m['VmHWM:']:.1f} "
                            f"anon_mb={m['RssAnon:']:.1f} file_mb={m['RssFile:']:.1f} "
                            f"inbox={inbox} binary={binary}",
                            flush=True,
                        )
            finally:
                for *_, proc in daemons:
                    proc.terminate()
                    proc.wait()
                sim.kill()
                sim.wait()


if __name__ == "__main__":
    main()

"""Starting a sessiond for the Python test suites (the Clerk and Trinsic SDK suites, the attack
run): the binary serves on a free port, and the address is read from its JSON log. Standard
library only, so every suite's environment can import it.
"""

import json
import signal
import subprocess
import threading
import time


def serve(binary, env, stderr=subprocess.DEVNULL, lines=None):
    """Starts `binary serve` on 127.0.0.1 with `env`; returns (process, base URL).

    The log is drained for the life of the process so the server never blocks on a full pipe;
    when `lines` is a list, every log line is appended to it.
    """
    proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0"], env=env,
                            stdout=subprocess.PIPE, stderr=stderr, text=True)
    keep = lines.append if lines is not None else (lambda _line: None)
    url = None
    deadline = time.time() + 60
    while url is None and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"sessiond exited with {proc.wait()}")
        keep(line)
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("message") == "listening":
            url = "http://" + entry["addr"]
    if not url:
        proc.kill()
        raise RuntimeError("sessiond did not start")

    def drain():
        for line in proc.stdout:
            keep(line)

    threading.Thread(target=drain, daemon=True).start()
    return proc, url


def stop(proc):
    """Stops the server the way an operator would (SIGTERM) and waits for it."""
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)

"""A private Asterisk to try tts-queue against by hand: the shipped dialplan, the fake phones.

    .venv/bin/python -m tests.asterisk.sandbox              # ASTERISK_SRC or ASTERISK_BIN set

It starts an instance (tests/asterisk/instance.py), writes the settings a worker needs to
`<its dir>/tts-queue.env`, prints how to use it, and runs until Ctrl-C; then it stops
Asterisk and removes its directory. docs/asterisk.md, "Try it with a real Asterisk".
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from tests.asterisk.fake_phones import CALLEES, DEFAULT_BEHAVIOUR, number
from tests.asterisk.install import AsteriskUnavailable, find_asterisk
from tests.asterisk.instance import PrivateAsterisk


def _env_lines(pbx: PrivateAsterisk, backend: str) -> list[str]:
    values = {key: str(value) for key, value in pbx.settings_for(backend).items()}
    # Short rings for trying things out (the product's default is 30 s).
    values["CALL_RING_TIMEOUT"] = "10"
    return [f"{key}={value}" for key, value in values.items()]


def _guide(pbx: PrivateAsterisk, env_file: str) -> str:
    phones = "\n".join(f"    {number(c.ending)}  {c.behaviour}" for c in CALLEES)
    return f"""
Private Asterisk running (pid {pbx.pid}) in {pbx.root}
  AMI 127.0.0.1:{pbx.ami_port}, spool {pbx.spool}, log {pbx.log_path}

Point tts-queue at it (another terminal, in the checkout):
    set -a; . {env_file}; set +a
    ./manage.sh start
    ./manage.sh call "Hola, esta es una prueba." {number("0006")} --wait

Watch it:
    {pbx.install.binary} -C {pbx.conf} -rvvv    (Asterisk's console: Ctrl-C leaves it)
    ./manage.sh logs worker                     (and the dashboard, http://127.0.0.1:8080)

Fake phones (any 10-digit mobile number; the last four digits pick the callee):
{phones}
    other       {DEFAULT_BEHAVIOUR}

Ctrl-C here stops Asterisk and removes {pbx.root}; `./manage.sh stop` stops tts-queue.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("ami", "callfile"), default="ami")
    args = parser.parse_args(argv)
    try:
        install = find_asterisk()
    except AsteriskUnavailable as exc:
        print(exc, file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with PrivateAsterisk(install) as pbx:
        env_file = pbx.root / "tts-queue.env"
        env_file.write_text("\n".join(_env_lines(pbx, args.backend)) + "\n")
        print(_guide(pbx, str(env_file)), flush=True)
        while not stop.wait(1.0):
            if not pbx.running:
                print("Asterisk exited; see its log above", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

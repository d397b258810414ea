"""The whole platform in the foreground without Docker: `make run` (docs/local-stack.md).

    python deploy/local_stack.py check    # the servers answer and nginx is installed
    python deploy/local_stack.py run      # check, migrate, start the gateway, then the services
    python deploy/local_stack.py gateway  # only render the gateway config (compose does this)

Every setting comes from the environment over the repo's .env, so a second stack can run
beside the first with other ports (GATEWAY_PORT, AUTH_PORT, ...) and STACK_RUN_DIR.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy.stack import gateway, gateway_metrics, servers
from deploy.stack.config import PROCESSES, Service, load_env, load_processes, run_dir
from deploy.stack.launcher import Launcher, NotReady
from deploy.stack.startup import start_platform


def _taken(env: dict[str, str], services: list[Service]) -> list[str]:
    """The addresses this stack would listen on where something listens already."""
    values = gateway.settings(env)
    addresses = {
        "gateway": values["GATEWAY_LISTEN"],
        "gateway (internal)": values["INTERNAL_LISTEN"],
    }
    if (metrics := gateway_metrics.process(env)) is not None:
        addresses["gateway_metrics"] = metrics[1]
    addresses |= {p.name: p.address for service in services for p in service.each()}
    return [f"{name} ({address})" for name, address in addresses.items() if servers.in_use(address)]


def run(env: dict[str, str], processes_file: Path) -> int:
    if not servers.check(env):
        return 1
    processes = load_processes(env, processes_file)
    if taken := _taken(env, processes.services):
        print(f"error: already in use: {', '.join(taken)}. Is another stack running?")
        print("  A second stack needs other ports: see docs/local-stack.md.")
        return 1
    names = [m.name for m in processes.migrations]
    names += [p.name for s in processes.services for p in s.each()]
    launcher = Launcher(env, width=max(len(n) for n in [*names, "nginx", "stack"]))

    asked_by: list[str] = []  # the signal that asked to stop, said once the stop begins

    def stop(signum: int, _: FrameType | None) -> None:
        # Nothing that takes a lock here: a handler runs on the main thread between two of
        # its bytecodes, maybe while that thread holds the very lock (the output's, or the
        # stop event's own, inside Event.wait), and would wait for itself for ever. So the
        # event is set from a thread of its own. `uv run` passes a SIGTERM or Ctrl-C on, so
        # two signals come at once; a closed terminal sends SIGHUP.
        asked_by.append(signal.Signals(signum).name)
        threading.Thread(target=launcher.stopping.set, daemon=True).start()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    try:
        try:
            gateway_url = start_platform(launcher, env, processes, restart=True)
        except NotReady as failed:
            return 0 if launcher.stopping.is_set() else failed.code
        launcher.tell("up", url=gateway_url, docs=f"{gateway_url}/docs")
        launcher.say("stack", servers.management_ui(env))
        launcher.watch()  # until Ctrl-C or SIGTERM; a process that dies is started again
        return 0
    finally:
        if asked_by:
            launcher.tell("stopping", asked_by=asked_by[0])
        launcher.stop_all()
        launcher.tell("stopped")


def render_gateway(env: dict[str, str], processes_file: Path) -> int:
    """The gateway's files for the services of `processes_file`, reached at their *_HOST and
    *_PORT: docker compose's `gateway-config` step, which sets each *_HOST to a service name."""
    conf = gateway.render(env, load_processes(env, processes_file).services, run_dir(env))
    print(f"rendered {conf}; run it with: {shlex.join(gateway.nginx_argv(conf))}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["check", "run", "gateway"])
    parser.add_argument(
        "--processes",
        type=Path,
        default=Path(os.environ.get("STACK_PROCESSES_FILE", PROCESSES)),
        help="what to run (default: $STACK_PROCESSES_FILE, else deploy/processes.toml)",
    )
    args = parser.parse_args()
    env = load_env()
    try:
        if args.command == "check":
            return 0 if servers.check(env) else 1
        if args.command == "gateway":
            return render_gateway(env, args.processes)
        return run(env, args.processes)
    except ValueError as exc:  # a setting that cannot work: say which
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before the services start: nothing to stop
        return 130


if __name__ == "__main__":
    sys.exit(main())

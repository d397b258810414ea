"""The platform's start, in the order `make run` needs it (docs/local-stack.md): the migrations to
their end, the gateway's metrics process, the gateway (the services reach each other through
its internal side), then every process of every service, each ready within a deadline.
`make run` and the benchmarks start the platform with it."""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping

from deploy.stack import gateway, gateway_metrics
from deploy.stack.config import Processes, run_dir
from deploy.stack.launcher import Launcher, NotReady

READY_WITHIN = 30.0  # seconds for every service to answer /readyz
METRICS_READY_WITHIN = 10.0


def start_platform(
    launcher: Launcher, env: Mapping[str, str], processes: Processes, *, restart: bool
) -> str:
    """Start what `processes` names with `launcher` (each child named as in `make run`'s
    output: `auth-migrate`, `gateway_metrics`, `nginx`, `auth.1`, ...), `restart` saying
    whether one that dies is started again. The gateway's URL once every service is ready;
    NotReady otherwise (with a failed migration's exit status)."""
    conf = gateway.render(env, processes.services, run_dir(env))
    for migration in processes.migrations:
        done = launcher.run_to_end(migration.name, migration.argv)
        if launcher.stopping.is_set():
            raise NotReady(f"asked to stop during {migration.name}")
        if (code := done.running.returncode) != 0:
            raise NotReady(f"{migration.name} failed ({code})\n{done.tail()}", code=code)
    # The gateway's metrics process before the gateway, which sends it a line per request.
    if (metrics := gateway_metrics.process(dict(env))) is not None:
        argv, address = metrics
        child = launcher.start("gateway_metrics", argv, restart=restart)
        deadline = time.monotonic() + METRICS_READY_WITHIN
        launcher.wait_ready(child, f"http://{address}/readyz", deadline)
    launcher.start("nginx", gateway.nginx_argv(conf), stop_signal=signal.SIGQUIT, restart=restart)
    for service in processes.services:
        for process in service.each():
            setting = {service.port_setting: str(process.port)} if service.port_setting else {}
            launcher.start(
                process.name,
                service.argv,
                env=setting | {"PROCESS_NAME": process.name},
                restart=restart,
            )
    deadline = time.monotonic() + READY_WITHIN
    for service in processes.services:
        for process in service.each():
            url = f"http://{process.address}/readyz"
            launcher.wait_ready(launcher.named(process.name), url, deadline)
    return f"http://{env['GATEWAY_HOST']}:{env['GATEWAY_PORT']}"

"""`make run` and RabbitMQ's management UI: named where it answers, enabled where the broker is on
this machine and its plugin tool is here, else the line that enables it."""

from __future__ import annotations

import os

import pytest
from deploy.stack.servers import MANAGEMENT_ENABLE, management_ui


class Runner:
    def __init__(self) -> None:
        self.ran: list[list[str]] = []

    def __call__(self, command: list[str]) -> int:
        self.ran.append(command)
        return 0


ENV = {"RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/", "RABBITMQ_MANAGEMENT_PORT": "15672"}


def test_a_management_ui_that_answers_is_named() -> None:
    line = management_ui(ENV, answers=lambda host, port: (host, port) == ("127.0.0.1", 15672))
    assert line.startswith("ok: RabbitMQ management UI at http://127.0.0.1:15672")


@pytest.mark.skipif(os.geteuid() != 0, reason="the plugin is enabled as root only")
def test_where_the_plugin_tool_is_here_the_plugin_is_enabled() -> None:
    run = Runner()
    line = management_ui(
        ENV, answers=lambda host, port: False, tool=lambda name: f"/usr/sbin/{name}", run=run
    )
    assert run.ran == [["/usr/sbin/rabbitmq-plugins", "enable", "rabbitmq_management"]]
    assert line.startswith("ok: RabbitMQ management UI enabled")


def test_without_the_tool_it_says_how_to_enable_it() -> None:
    line = management_ui(ENV, answers=lambda host, port: False, tool=lambda name: None)
    assert MANAGEMENT_ENABLE in line and "http://127.0.0.1:15672" in line


def test_a_broker_elsewhere_is_not_changed_from_here() -> None:
    run = Runner()
    env = ENV | {"RABBITMQ_URL": "amqp://guest:guest@broker.example:5672/"}
    line = management_ui(
        env, answers=lambda host, port: False, tool=lambda name: "/usr/bin/x", run=run
    )
    assert run.ran == [] and MANAGEMENT_ENABLE in line


def test_an_empty_port_means_no_look() -> None:
    line = management_ui(ENV | {"RABBITMQ_MANAGEMENT_PORT": ""}, answers=lambda h, p: True)
    assert "not looked for" in line

"""``review serve`` that cannot start says which option to change, in one line."""

from __future__ import annotations

import socket

import pytest
from typer.testing import CliRunner

from weaklabel.cli import app

runner = CliRunner()


def test_a_port_in_use_names_the_port(rfx) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        r = runner.invoke(app, ["review", "serve", "-w", str(rfx.ws), "--port", str(port)])
    assert r.exit_code == 1, r.output
    assert f"Error: cannot listen on 127.0.0.1:{port} (Address already in use); pick " \
           "another --port (0: any free one)" in r.output


@pytest.mark.parametrize("host", ["192.0.2.1", "no-such-host.invalid"])
def test_a_host_not_of_this_machine_names_the_host(rfx, host: str) -> None:  # type: ignore[no-untyped-def]
    # it said "pick another --port", which no port could fix
    r = runner.invoke(app, ["review", "serve", "-w", str(rfx.ws), "--host", host,
                            "--port", "0"])
    assert r.exit_code == 1, r.output
    assert f"Error: cannot listen on {host}:0 (" in r.output
    assert "--host must be an address of this machine" in r.output
    assert "Traceback" not in r.output and r.output.count("\n") == 1

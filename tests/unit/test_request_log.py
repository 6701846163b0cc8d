"""At debug level the daemon logs one line per request: ``METHOD path -> status (ms)``."""

from __future__ import annotations

import logging
import time

import pytest

from cove.daemon.http import Request, _log_request
from cove.runtime import logs


def test_one_line_per_request_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    req = Request(method="POST", path="/v1.41/containers/create", query={}, headers={})
    with caplog.at_level(logging.INFO, logger="cove.http"):
        _log_request(req, 201, time.monotonic())
    assert not caplog.records                         # not at info level
    with caplog.at_level(logging.DEBUG, logger="cove.http"):
        _log_request(req, 201, time.monotonic() - 0.012)
    [rec] = caplog.records
    line = rec.getMessage()
    assert line.startswith("POST /v1.41/containers/create -> 201 (") and line.endswith(" ms)")
    assert 11 <= float(line.split("(")[1].split()[0]) < 1000


def test_log_driver_none_is_accepted_without_options_and_caps_the_files() -> None:
    logs.check_config({"Type": "none"})
    with pytest.raises(Exception, match="LogConfig.Config"):
        logs.check_config({"Type": "none", "Config": {"max-size": "1m"}})
    assert logs.limits({"Type": "none"}) == (logs.NONE_MAX_SIZE, 1)

"""The benchmark harness behind ``bench/run.py``: cove vs Docker vs the raw kernel work.

Modules: :mod:`.stats` (samples and summaries), :mod:`.proc` (bounded subprocesses and
process clean-up), :mod:`.unixhttp` (an Engine API client over a unix socket),
:mod:`.engine` (one CLI + API under test, with everything it creates tracked for removal),
:mod:`.covedaemon` (a private cove daemon), :mod:`.scenarios` (the measured operations,
identical for cove and Docker), :mod:`.rawlimit` (the same kernel work in a minimal
pyroute2 script), :mod:`.parts` (what runs inside each throwaway namespace) and
:mod:`.report` (targets, the Markdown table).
"""

"""Docker's wire JSON (PascalCase) built from cove's model, and parsed into it.

Kept apart from :mod:`cove.model` so the model stays free of Docker's naming
and the API's shapes live in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import pipework, portmap
from ..runtime import sysctl
from . import createfields, wire
from ..errors import InvalidArgument, field_error
from ..ipam import IpamConfig, parse_ipam_config
from ..model import PREDEFINED, Container, ContainerConfig, Endpoint, EndpointRequest, HostConfig, Network, epoch_of

if TYPE_CHECKING:
    from .backend import Backend


# networks ---------------------------------------------------------------------------
def network_json(engine: Backend, net: Network, detail: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Name": net.name,
        "Id": net.id,
        "Created": net.created,
        "Scope": "global" if net.driver == "overlay" else "local",
        "Driver": net.driver,
        "EnableIPv6": net.ipv6,
        "IPAM": {"Driver": "default", "Options": None if net.name in ("host", "none") else {},
                 "Config": [ipam_config_json(c) for c in net.ipam]},
        "Internal": net.internal,
        "Attachable": net.attachable,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": {},
        "Options": dict(net.options),
        "Labels": dict(net.labels),
    }
    if detail:
        for ep in engine.endpoints_on(net.id):
            c = engine.containers.get(ep.container_id)
            out["Containers"][ep.container_id] = {
                "Name": c.name if c else "",
                "EndpointID": ep.id,
                "MacAddress": ep.mac,
                "IPv4Address": f"{ep.ip}/{ep.prefixlen}",
                "IPv6Address": f"{ep.ip6}/{ep.prefixlen6}" if ep.ip6 else "",
                "Cove": kernel_objects(net, ep, c.state.netns if c else ""),
            }
        if net.driver in ("bridge", "overlay"):
            out["Cove"] = {"Bridge": net.bridge, "ICC": net.icc, "Masquerade": net.masquerade}
            if "cove.bridge.uplink" in net.options:
                out["Cove"]["Uplink"] = net.options["cove.bridge.uplink"]
        if net.driver == "overlay" and engine.overlay is not None:
            extra = engine.overlay.inspect(net, bool(out["Containers"]))
            out["Peers"] = extra.pop("Peers")       # Docker's shape: [{"Name": host, "IP": its VTEP}]
            out["Cove"].update(extra)               # VXLAN (device, VNI, local VTEP, port), RemoteEndpoints
        if net.name in ("host", "none"):
            for c in engine.containers.values():
                if c.running and c.host_config.network_mode == net.name:
                    out["Containers"][c.id] = {"Name": c.name, "EndpointID": "", "MacAddress": "",
                                               "IPv4Address": "", "IPv6Address": ""}
    return out


def ipam_request(body: dict[str, Any]) -> list[IpamConfig]:
    ipam = wire.obj(body.get("IPAM"), "IPAM")
    drv = wire.string(ipam.get("Driver"), "IPAM.Driver") or "default"
    if drv != "default":
        raise InvalidArgument(f"invalid IPAM driver {drv!r}: cove has only the default IPAM driver")
    wire.str_map(ipam.get("Options"), "IPAM.Options")
    config = wire.array(ipam.get("Config"), "IPAM.Config")
    return ipam_configs([wire.obj(c, f"IPAM.Config[{i}]") for i, c in enumerate(config)])


def ipam_configs(config: list[dict[str, Any]]) -> list[IpamConfig]:
    """Docker's ``IPAM.Config`` entries, validated (an entry without a subnet is skipped, as in Docker)."""
    out = []
    for raw in config:
        if not raw.get("Subnet"):
            if raw.get("Gateway") or raw.get("IPRange"):
                raise InvalidArgument("invalid gateway/ip-range: a --subnet is required with --gateway and --ip-range")
            continue
        out.append(ipam_config_from_json(raw))
    return out


def ipam_config_json(cfg: IpamConfig) -> dict[str, Any]:
    """Docker's ``IPAM.Config`` entry (its key order); unset keys are left out, as Docker does."""
    d: dict[str, Any] = {"Subnet": str(cfg.subnet)}
    if cfg.ip_range is not None:
        d["IPRange"] = str(cfg.ip_range)
    if cfg.gateway is not None:
        d["Gateway"] = str(cfg.gateway)
    if cfg.aux:
        d["AuxiliaryAddresses"] = {name: str(ip) for name, ip in cfg.aux.items()}
    return d


def ipam_config_from_json(d: dict[str, Any]) -> IpamConfig:
    """The inverse of :func:`ipam_config_json`, validating (empty strings count as unset)."""
    for key in ("Subnet", "Gateway", "IPRange"):
        wire.string(d.get(key), f"IPAM.Config.{key}")
    wire.str_map(d.get("AuxiliaryAddresses"), "IPAM.Config.AuxiliaryAddresses")
    if not d.get("Subnet"):
        raise field_error("subnet", d.get("Subnet", ""), "missing")
    return parse_ipam_config(d["Subnet"], d.get("Gateway") or None, d.get("IPRange") or None,
                             d.get("AuxiliaryAddresses") or None)


# containers -------------------------------------------------------------------------
def _str_list(v: Any, field: str) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return list(v)
    raise InvalidArgument(f"invalid {field}: expected a list of strings")


def _no_control_chars(field: str, values: list[str]) -> None:
    """Refuse values that would add lines to the container's /etc files (newlines, and any other
    control character: a carriage return, a NUL, a tab inside a name)."""
    for v in values:
        if not isinstance(v, str):
            raise InvalidArgument(f"invalid {field}: expected a string")
        bad = next((c for c in v if ord(c) < 0x20 or ord(c) == 0x7F), None)
        if bad is not None:
            raise InvalidArgument(f"invalid {field} {v!r}: control characters such as {bad!r} are not allowed "
                                  "(they would add lines to the container's /etc files)")


def endpoint_request(cfg: Any, field: str = "EndpointConfig") -> EndpointRequest:
    cfg = wire.obj(cfg, field)
    ipam = wire.obj(cfg.get("IPAMConfig"), f"{field}.IPAMConfig")
    return EndpointRequest(ip=wire.string(ipam.get("IPv4Address"), f"{field}.IPAMConfig.IPv4Address") or None,
                           aliases=_str_list(cfg.get("Aliases"), f"{field}.Aliases"),
                           mac=wire.string(cfg.get("MacAddress"), f"{field}.MacAddress") or None,
                           links=_str_list(cfg.get("Links"), f"{field}.Links"),
                           ip6=wire.string(ipam.get("IPv6Address"), f"{field}.IPAMConfig.IPv6Address") or None)


def _int(v: Any, field: str) -> int:
    if v is None:
        return 0
    if isinstance(v, bool) or not isinstance(v, int):
        raise InvalidArgument(f"invalid {field}: expected an integer")
    return v


def security_request(hc: dict[str, Any]) -> dict[str, Any]:
    """HostConfig's security profile and limits, checked here (a 400 naming the field)."""
    from ..runtime import logs, profile

    cap_add, cap_drop = _str_list(hc.get("CapAdd"), "CapAdd"), _str_list(hc.get("CapDrop"), "CapDrop")
    for name in cap_add:
        profile.normalize_cap(name, "CapAdd")
    for name in cap_drop:
        profile.normalize_cap(name, "CapDrop")
    security_opt = _str_list(hc.get("SecurityOpt"), "SecurityOpt")
    seccomp, _ = profile.parse_security_opts(security_opt)
    if seccomp and seccomp != "unconfined":
        profile.seccomp_for(seccomp, [], False)          # a profile that cannot be used is refused now
    pids = _int(hc.get("PidsLimit"), "PidsLimit")
    memory = _int(hc.get("Memory"), "Memory")
    if memory < 0:
        raise InvalidArgument("invalid Memory: must not be negative")
    if 0 < memory < 6 * 1024 * 1024:
        raise InvalidArgument("invalid Memory: Minimum memory limit allowed is 6MB")
    log_config = hc.get("LogConfig") or {}
    if not isinstance(log_config, dict):
        raise InvalidArgument("invalid LogConfig: expected an object")
    logs.check_config(log_config)
    userns_mode = wire.string(hc.get("UsernsMode"), "HostConfig.UsernsMode") or ""
    if userns_mode not in ("", "host", "private"):
        raise InvalidArgument(f"invalid HostConfig.UsernsMode {userns_mode!r}: host, or empty for the daemon's "
                              "(--userns-remap)")
    return {"cap_add": cap_add, "cap_drop": cap_drop,
            "privileged": wire.boolean(hc.get("Privileged"), "HostConfig.Privileged"),
            "userns_mode": "host" if userns_mode == "host" else "",
            "security_opt": security_opt, "pids_limit": max(pids, 0), "memory": memory,
            "log_config": {"Type": log_config.get("Type") or "json-file",
                           "Config": dict(log_config.get("Config") or {})}}


def healthcheck_request(hc: Any) -> dict[str, Any]:
    """Config.Healthcheck, checked as dockerd does (durations in ns, at least 1 ms when set)."""
    if hc is None:
        return {}
    if not isinstance(hc, dict):
        raise InvalidArgument("invalid Healthcheck: expected an object")
    test = _str_list(hc.get("Test"), "Healthcheck.Test")
    if test and test[0] not in ("NONE", "CMD", "CMD-SHELL"):
        raise InvalidArgument(f"invalid Healthcheck.Test: {test[0]!r}: the first item must be NONE, CMD or CMD-SHELL")
    if test and test[0] in ("CMD", "CMD-SHELL") and len(test) < 2:
        raise InvalidArgument(f"invalid Healthcheck.Test: {test[0]} needs a command")
    out: dict[str, Any] = {"Test": test} if test else {}
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        v = _int(hc.get(key), f"Healthcheck.{key}")
        if v < 0 or 0 < v < 1_000_000:
            raise InvalidArgument(f"invalid Healthcheck.{key}: {key} in Healthcheck cannot be less than 1ms")
        if v:
            out[key] = v
    retries = _int(hc.get("Retries"), "Healthcheck.Retries")
    if retries < 0:
        raise InvalidArgument("invalid Healthcheck.Retries: Retries in Healthcheck cannot be negative")
    if retries:
        out["Retries"] = retries
    return out


def restart_policy(rp: Any) -> dict[str, Any]:
    """HostConfig.RestartPolicy, checked as dockerd does."""
    if rp is None:
        return {"Name": "no", "MaximumRetryCount": 0}
    if not isinstance(rp, dict):
        raise InvalidArgument("invalid HostConfig.RestartPolicy: expected an object")
    name = rp.get("Name") or "no"
    count = _int(rp.get("MaximumRetryCount"), "HostConfig.RestartPolicy.MaximumRetryCount")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise InvalidArgument(f"invalid HostConfig.RestartPolicy.Name: {name!r}: expected no, always, "
                              "unless-stopped or on-failure")
    if count < 0:
        raise InvalidArgument("invalid HostConfig.RestartPolicy.MaximumRetryCount: must not be negative")
    if count and name != "on-failure":
        raise InvalidArgument(f"invalid HostConfig.RestartPolicy: maximum retry count cannot be used with "
                              f"restart policy '{name}'")
    return {"Name": name, "MaximumRetryCount": count}


def mounts_request(body: dict[str, Any], hc: dict[str, Any]) -> dict[str, Any]:
    """Binds, Mounts, Volumes (cove.engine.volumes' rules) and the restart policy."""
    from ..mounts import parse_mounts

    binds = _str_list(hc.get("Binds"), "HostConfig.Binds")
    return {"binds": binds, "mounts": parse_mounts(binds, hc.get("Mounts"), body.get("Volumes")),
            "restart_policy": restart_policy(hc.get("RestartPolicy"))}


def container_request(body: dict[str, Any]) -> tuple[ContainerConfig, HostConfig, dict[str, EndpointRequest]]:
    if not isinstance(body, dict):
        raise InvalidArgument("invalid container config: expected a JSON object")
    createfields.check_create(body)
    image = wire.string(body.get("Image"), "Image")
    if not image:
        raise InvalidArgument("invalid Image: an image name is required")
    hc = wire.obj(body.get("HostConfig"), "HostConfig")
    exposed = wire.obj_map(body.get("ExposedPorts"), "ExposedPorts")
    for key in exposed:
        portmap.parse_key(key)
    bindings = wire.obj(hc.get("PortBindings"), "HostConfig.PortBindings")
    for key, hosts in bindings.items():
        for i, h in enumerate(wire.array(hosts, f"HostConfig.PortBindings.{key}")):
            for k in ("HostIp", "HostPort"):
                wire.string(wire.obj(h, f"HostConfig.PortBindings.{key}[{i}]").get(k),
                            f"HostConfig.PortBindings.{key}[{i}].{k}")
    # the specs are checked now, as dockerd does at create (ports are allocated at start)
    portmap.requests(bindings, exposed, False)
    b = body.get
    stop_timeout = body.get("StopTimeout")
    if stop_timeout is not None and (isinstance(stop_timeout, bool) or not isinstance(stop_timeout, int)):
        raise InvalidArgument("invalid StopTimeout: expected an integer number of seconds")
    config = ContainerConfig(
        image=image, image_id="",
        cmd=_str_list(body.get("Cmd"), "Cmd"), entrypoint=_str_list(body.get("Entrypoint"), "Entrypoint"),
        env=_str_list(body.get("Env"), "Env"), hostname=wire.string(b("Hostname"), "Hostname"),
        domainname=wire.string(b("Domainname"), "Domainname"), workdir=wire.string(b("WorkingDir"), "WorkingDir"),
        tty=wire.boolean(b("Tty"), "Tty"), open_stdin=wire.boolean(b("OpenStdin"), "OpenStdin"),
        exposed_ports=exposed, labels=wire.str_map(b("Labels"), "Labels"),
        healthcheck=healthcheck_request(body.get("Healthcheck")), volumes=wire.obj_map(b("Volumes"), "Volumes"),
        attach_stdin=wire.boolean(b("AttachStdin"), "AttachStdin"),
        attach_stdout=wire.boolean(b("AttachStdout"), "AttachStdout"),
        attach_stderr=wire.boolean(b("AttachStderr"), "AttachStderr"),
        stdin_once=wire.boolean(b("StdinOnce"), "StdinOnce"),
        stop_timeout=stop_timeout)
    mode = wire.string(hc.get("NetworkMode"), "HostConfig.NetworkMode") or "default"
    host = HostConfig(
        network_mode=mode, auto_remove=wire.boolean(hc.get("AutoRemove"), "HostConfig.AutoRemove"),
        dns=_str_list(hc.get("Dns"), "Dns"), dns_search=_str_list(hc.get("DnsSearch"), "DnsSearch"),
        dns_options=_str_list(hc.get("DnsOptions"), "DnsOptions"),
        extra_hosts=_str_list(hc.get("ExtraHosts"), "ExtraHosts"), links=_str_list(hc.get("Links"), "Links"),
        port_bindings=dict(bindings), publish_all=wire.boolean(hc.get("PublishAllPorts"), "HostConfig.PublishAllPorts"),
        sysctls=sysctl.check(hc.get("Sysctls"), mode),
        **security_request(hc), **mounts_request(body, hc))
    if host.auto_remove and host.restart_policy.get("Name") not in ("", "no"):
        raise InvalidArgument("invalid HostConfig.RestartPolicy: can't create 'AutoRemove' container with "
                              "restart policy")
    _no_control_chars("Hostname", [config.hostname])
    _no_control_chars("Domainname", [config.domainname])
    for fld, values in (("Dns", host.dns), ("DnsSearch", host.dns_search), ("DnsOptions", host.dns_options),
                        ("ExtraHosts", host.extra_hosts)):
        _no_control_chars(f"HostConfig.{fld}", values)
    netcfg = wire.obj(body.get("NetworkingConfig"), "NetworkingConfig")
    eps_cfg = wire.obj(netcfg.get("EndpointsConfig"), "NetworkingConfig.EndpointsConfig")
    endpoints = {name: endpoint_request(cfg, f"NetworkingConfig.EndpointsConfig.{name}")
                 for name, cfg in eps_cfg.items()}
    mac = wire.string(body.get("MacAddress"), "MacAddress")
    if mac:
        mode = host.network_mode if host.network_mode != "default" else "bridge"
        endpoints.setdefault(mode, EndpointRequest()).mac = mac
    return config, host, endpoints


def _state_json(c: Container) -> dict[str, Any]:
    s = c.state
    out: dict[str, Any] = {
        "Status": s.status, "Running": s.status == "running", "Paused": False, "Restarting": False,
        "OOMKilled": False, "Dead": False, "Pid": s.pid, "ExitCode": s.exit_code, "Error": s.error,
        "StartedAt": s.started_at, "FinishedAt": s.finished_at,
    }
    if s.health:
        out["Health"] = s.health
    return out


def _networks_json(engine: Backend, c: Container) -> dict[str, Any]:
    out: dict[str, Any] = {}
    eps = engine.endpoints.get(c.id, {})
    if c.mode in ("host", "none"):
        net = engine.find_network(c.mode)
        out[net.name] = _endpoint_settings(net, None, EndpointRequest(), "")
    for net_id, req in c.networks.items():
        joined = engine.networks.get(net_id)
        if joined is None:
            continue
        net = joined
        out[net.name] = _endpoint_settings(net, eps.get(net_id), req, c.state.netns)
        if net.name not in PREDEFINED and c.id[:12] not in req.aliases:
            # Docker (API <= 1.43) lists the short id among the aliases on user networks
            out[net.name]["Aliases"] = [*req.aliases, c.id[:12]]
    return out


def kernel_objects(net: Network, ep: Endpoint, sandbox: str) -> dict[str, Any]:
    """The kernel objects behind an endpoint, named as ``ip link`` / ``bridge link`` show them.

    On the host, the bridge port shows as ``HostInterface@ifIfIndex``; inside the container
    the interface shows as ``Interface@ifHostIfIndex`` (for macvlan/ipvlan, the parent's index).
    """
    return {
        "Interface": ep.ifname, "IfIndex": ep.ifindex,
        "HostInterface": ep.host_ifname, "HostIfIndex": ep.host_ifindex,
        "Bridge": net.bridge if net.driver in ("bridge", "overlay") else "",
        "Parent": net.options.get("parent", "") if net.driver in ("macvlan", "ipvlan") else "",
        "SandboxKey": sandbox,
    }


def _endpoint_settings(net: Network, ep: Endpoint | None, req: EndpointRequest, sandbox: str) -> dict[str, Any]:
    net_id = net.id
    return {
        "IPAMConfig": ({**({"IPv4Address": req.ip} if req.ip else {}), **({"IPv6Address": req.ip6} if req.ip6 else {})}
                       or None),
        "Links": req.links or None,
        "Aliases": req.aliases or None,
        "NetworkID": net_id,
        "EndpointID": ep.id if ep else "",
        "Gateway": ep.gateway if ep else "",
        "IPAddress": ep.ip if ep else "",
        "IPPrefixLen": ep.prefixlen if ep else 0,
        "IPv6Gateway": ep.gateway6 if ep else "",
        "GlobalIPv6Address": ep.ip6 if ep else "",
        "GlobalIPv6PrefixLen": ep.prefixlen6 if ep else 0,
        "MacAddress": ep.mac if ep else "",
        "DriverOpts": None,
        "Cove": kernel_objects(net, ep, sandbox) if ep else None,
    }


def container_json(engine: Backend, c: Container) -> dict[str, Any]:
    cfg, hc = c.config, c.host_config
    networks = _networks_json(engine, c)
    primary = next((v for v in networks.values() if v["IPAddress"]), None)
    etc = engine.cfg.container_data_dir(c.id)
    return {
        "Id": c.id,
        "Created": c.created,
        "Path": (cfg.entrypoint + cfg.cmd)[0] if (cfg.entrypoint + cfg.cmd) else "",
        "Args": (cfg.entrypoint + cfg.cmd)[1:],
        "State": _state_json(c),
        "Image": cfg.image_id,
        "ResolvConfPath": f"{etc}/resolv.conf",
        "HostnamePath": f"{etc}/hostname",
        "HostsPath": f"{etc}/hosts",
        "LogPath": "",
        "Name": "/" + c.name,
        "RestartCount": c.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": {
            "NetworkMode": hc.network_mode, "AutoRemove": hc.auto_remove, "Dns": hc.dns,
            "DnsSearch": hc.dns_search, "DnsOptions": hc.dns_options, "ExtraHosts": hc.extra_hosts or None,
            "Links": hc.links or None, "PortBindings": hc.port_bindings, "PublishAllPorts": hc.publish_all,
            "CapAdd": hc.cap_add or None, "CapDrop": hc.cap_drop or None, "Privileged": hc.privileged,
            "SecurityOpt": hc.security_opt or None, "PidsLimit": hc.pids_limit or None, "Memory": hc.memory,
            "LogConfig": hc.log_config or {"Type": "json-file", "Config": {}},
            "Sysctls": hc.sysctls or None, "UsernsMode": hc.userns_mode,
            "RestartPolicy": hc.restart_policy or {"Name": "no", "MaximumRetryCount": 0},
            "Binds": hc.binds or None,
            "Mounts": [_mount_json(m) for m in hc.mounts if m not in _bind_mounts(hc)] or None,
        },
        "Mounts": engine.volume_svc.inspect_mounts(c),
        "Config": {
            "Hostname": cfg.hostname, "Domainname": cfg.domainname, "User": "",
            "AttachStdin": cfg.attach_stdin, "AttachStdout": cfg.attach_stdout, "AttachStderr": cfg.attach_stderr,
            "Tty": cfg.tty, "OpenStdin": cfg.open_stdin, "StdinOnce": cfg.stdin_once,
            "Env": cfg.env, "Cmd": cfg.cmd or None, "Image": cfg.image, "WorkingDir": cfg.workdir,
            "Entrypoint": cfg.entrypoint or None, "ExposedPorts": cfg.exposed_ports or None,
            "Labels": cfg.labels,
            **({"Healthcheck": cfg.healthcheck} if cfg.healthcheck else {}),
            "Volumes": cfg.volumes or None,
            **({"StopTimeout": cfg.stop_timeout} if cfg.stop_timeout is not None else {}),
        },
        "NetworkSettings": {
            "Bridge": "", "SandboxID": c.id if c.state.netns else "", "SandboxKey": c.state.netns,
            "HairpinMode": False,
            "Ports": portmap.docker_ports([portmap.PortMapping.from_dict(d) for d in c.state.ports],
                                          cfg.exposed_ports) if c.running else {},
            "Gateway": primary["Gateway"] if primary else "",
            "IPAddress": primary["IPAddress"] if primary else "",
            "IPPrefixLen": primary["IPPrefixLen"] if primary else 0,
            "MacAddress": primary["MacAddress"] if primary else "",
            "EndpointID": primary["EndpointID"] if primary else "",
            "GlobalIPv6Address": primary["GlobalIPv6Address"] if primary else "",
            "GlobalIPv6PrefixLen": primary["GlobalIPv6PrefixLen"] if primary else 0,
            "IPv6Gateway": primary["IPv6Gateway"] if primary else "",
            "Networks": networks,
            "ExtraInterfaces": {x.ifname: pipework.to_json(x) for x in engine.extra_interfaces(c.id)},
        },
    }


def container_summary(engine: Backend, c: Container) -> dict[str, Any]:
    networks = _networks_json(engine, c)
    for v in networks.values():
        v.pop("Cove", None)
    cmd = c.config.entrypoint + c.config.cmd
    return {
        "Id": c.id,
        "Names": ["/" + c.name],
        "Image": c.config.image,
        "ImageID": c.config.image_id,
        "Command": " ".join(cmd),
        "Created": epoch_of(c.created),
        "Ports": portmap.ps_ports([portmap.PortMapping.from_dict(d) for d in c.state.ports],
                                  c.config.exposed_ports),
        "Labels": c.config.labels,
        "State": c.state.status,
        "Status": status_text(c),
        "HostConfig": {"NetworkMode": c.host_config.network_mode},
        "NetworkSettings": {"Networks": networks},
        "Mounts": engine.volume_svc.inspect_mounts(c),
    }


def _bind_mounts(hc: HostConfig) -> list[dict[str, Any]]:
    """The mounts that came from Binds (the first len(binds)): inspect shows them under Binds."""
    return hc.mounts[:len(hc.binds)]


def _mount_json(m: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"Type": m["Type"], "Source": m["Source"], "Target": m["Target"]}
    if m["ReadOnly"]:
        out["ReadOnly"] = True
    if m["Type"] == "bind":
        out["BindOptions"] = {"Propagation": m.get("Propagation") or "rprivate"}
    return out


def status_text(c: Container) -> str:
    import time

    s = c.state
    if s.status == "running":
        health = f" ({s.health['Status']})" if s.health.get("Status") else ""
        if health == " (starting)":
            health = " (health: starting)"
        return f"Up {_human(time.time() - epoch_of(s.started_at))}{health}"
    if s.status == "exited":
        return f"Exited ({s.exit_code}) {_human(time.time() - epoch_of(s.finished_at))} ago"
    return "Created"


def _human(seconds: float) -> str:
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s < 60:
        return f"{s} seconds" if s != 1 else "1 second"
    m = s // 60
    if m < 60:
        return f"{m} minutes" if m != 1 else "About a minute"
    h = m // 60
    if h < 48:
        return f"{h} hours" if h != 1 else "About an hour"
    return f"{h // 24} days"

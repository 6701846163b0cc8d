"""The security profile of a container: Docker's default, turned into an OCI runtime config.

cove runs containers with runc (:mod:`cove.runtime.shim`); this module writes what runc
reads.  The default profile is Docker's, point by point:

- the 14 capabilities Docker grants (:data:`DEFAULT_CAPS`), in the bounding, effective
  and permitted sets (none inheritable or ambient); ``--cap-add``/``--cap-drop`` adjust
  them, ``ALL`` meaning every capability this kernel knows;
- Docker's seccomp profile, read from ``/usr/share/containers/seccomp.json`` (Debian's
  ``golang-github-containers-common`` ships the same file) and turned into
  ``linux.seccomp``: only this machine's architectures, and rules whose ``includes``/
  ``excludes`` on capabilities, architectures and kernel versions fit this container;
- masked and read-only paths under ``/proc`` and ``/sys`` (:data:`MASKED_PATHS`,
  :data:`READONLY_PATHS`), ``/sys`` and the cgroup tree read-only, ``/dev`` a tmpfs
  with only the standard nodes (runc creates them; the devices cgroup lets the
  container open nothing else), a cgroup namespace;
- ``--privileged``: every capability, no seccomp, nothing masked, ``/sys`` writable
  and every device allowed, as with Docker.
"""

from __future__ import annotations

import json
import os
import platform
from typing import Any

from ..errors import InvalidArgument

# Docker's default capabilities (moby oci/caps/defaults.go).
DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

# Every capability by number (linux/capability.h).
ALL_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)

# Docker's masked and read-only paths (moby oci/defaults.go).
MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

SECCOMP_PROFILES = (
    "/usr/share/containers/seccomp.json",
    "/var/cache/cove-containers-common/usr/share/containers/seccomp.json",   # scripts/install.sh's copy
)

_DEFAULT_PROFILE: dict[str, Any] | None = None

# Go's names for this machine's architecture (the profile's ``arches``), and libseccomp's.
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7l": "arm", "ppc64le": "ppc64le",
           "s390x": "s390x", "riscv64": "riscv64"}
_SCMP_ARCH = {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64", "386": "SCMP_ARCH_X86",
              "arm": "SCMP_ARCH_ARM", "ppc64le": "SCMP_ARCH_PPC64LE", "s390x": "SCMP_ARCH_S390X",
              "riscv64": "SCMP_ARCH_RISCV64"}


def _kernel_caps() -> tuple[str, ...]:
    """The capabilities cove may give: those this kernel knows and cove's own bounding set holds
    (cove may itself run in a container that lacks some)."""
    try:
        with open("/proc/self/status") as f:
            bounding = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    except (OSError, StopIteration, ValueError):
        bounding = (1 << len(ALL_CAPS)) - 1
    return tuple(c for i, c in enumerate(ALL_CAPS) if bounding & (1 << i))


def normalize_cap(name: str, field: str) -> str:
    """``net_admin``, ``NET_ADMIN`` and ``CAP_NET_ADMIN`` are one capability; ``ALL`` stays ``ALL``."""
    n = name.strip().upper()
    if n == "ALL":
        return n
    if not n.startswith("CAP_"):
        n = "CAP_" + n
    if n not in ALL_CAPS:
        raise InvalidArgument(f"invalid {field}: unknown capability {name!r}")
    return n


def capabilities(add: list[str], drop: list[str], privileged: bool = False) -> list[str]:
    """The container's capabilities, as Docker computes them (``ALL`` in either list wins)."""
    known = _kernel_caps()
    if privileged:
        return list(known)
    adds = [normalize_cap(c, "CapAdd") for c in add]
    drops = [normalize_cap(c, "CapDrop") for c in drop]
    if "ALL" in adds:
        return [c for c in known if c not in drops]
    base = [] if "ALL" in drops else [c for c in DEFAULT_CAPS if c not in drops]
    return [c for c in known if c in base or (c in adds and c not in drops)]


# -- seccomp ----------------------------------------------------------------------------------
def default_seccomp_profile() -> dict[str, Any]:
    """Docker's profile, read once per process (the shim zygote reads it before it forks)."""
    global _DEFAULT_PROFILE
    if _DEFAULT_PROFILE is not None:
        return _DEFAULT_PROFILE
    for path in SECCOMP_PROFILES:
        try:
            with open(path) as f:
                _DEFAULT_PROFILE = json.load(f)
            return _DEFAULT_PROFILE
        except FileNotFoundError:
            continue
    raise InvalidArgument("no default seccomp profile (/usr/share/containers/seccomp.json): run"
                          " scripts/install.sh, or start the container with --security-opt seccomp=unconfined")


def _kernel_version() -> tuple[int, ...]:
    parts = []
    for p in platform.release().split("-")[0].split(".")[:2]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:2] if p.isdigit())


def _fits(rule: dict[str, Any], caps: list[str], goarch: str, kernel: tuple[int, ...]) -> bool:
    inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
    if inc.get("arches") and goarch not in inc["arches"]:
        return False
    if any(c not in caps for c in inc.get("caps") or ()):
        return False
    if inc.get("minKernel") and kernel < _version(inc["minKernel"]):
        return False
    if exc.get("arches") and goarch in exc["arches"]:
        return False
    if any(c in caps for c in exc.get("caps") or ()):
        return False
    return True


def _x32() -> bool:
    """Whether the kernel runs x32 programs: only with ``syscall.x32=y`` on Debian's kernels.
    Without x32 in the filter its syscalls are refused outright (stricter than a filter for
    them, and it spares runc a third of the filter's compile time)."""
    try:
        with open("/proc/cmdline") as f:
            return "syscall.x32=y" in f.read()
    except OSError:
        return True


def oci_seccomp(profile: dict[str, Any], caps: list[str]) -> dict[str, Any]:
    """Docker's profile format (``archMap``, ``includes``/``excludes``) as OCI ``linux.seccomp``."""
    if not isinstance(profile, dict) or "defaultAction" not in profile:
        raise InvalidArgument("invalid seccomp profile: a JSON object with a defaultAction is required")
    goarch = _GOARCH.get(platform.machine(), platform.machine())
    native = _SCMP_ARCH.get(goarch)
    arches: list[str] = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        if native is not None and entry.get("architecture") == native:
            arches = [native, *(a for a in entry.get("subArchitectures", []) if a != "SCMP_ARCH_X32" or _x32())]
    kernel = _kernel_version()
    out: dict[str, Any] = {"defaultAction": profile["defaultAction"], "architectures": arches, "syscalls": []}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    for rule in profile.get("syscalls") or []:
        if not _fits(rule, caps, goarch, kernel):
            continue
        names = list(rule.get("names") or ([rule["name"]] if rule.get("name") else []))
        if not names:
            continue
        item: dict[str, Any] = {"names": names, "action": rule["action"]}
        if rule.get("errnoRet") is not None:
            item["errnoRet"] = rule["errnoRet"]
        args = [{k: a[k] for k in ("index", "value", "valueTwo", "op") if k in a} for a in rule.get("args") or []]
        if args:
            item["args"] = args
        out["syscalls"].append(item)
    return out


def seccomp_for(option: str, caps: list[str], privileged: bool) -> dict[str, Any] | None:
    """``option``: "" (Docker's default), ``unconfined``, or a profile's JSON text."""
    if option == "unconfined" or (privileged and not option):
        return None
    if not option:
        return oci_seccomp(default_seccomp_profile(), caps)
    try:
        profile = json.loads(option)
    except ValueError as exc:
        raise InvalidArgument(f"invalid SecurityOpt: seccomp profile is not JSON ({exc})") from None
    return oci_seccomp(profile, caps)


def parse_security_opts(opts: list[str]) -> tuple[str, bool]:
    """``HostConfig.SecurityOpt`` -> (seccomp option, no_new_privileges); 4xx on anything else."""
    seccomp, nnp = "", False
    for opt in opts:
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")
        key = key.strip()
        if key == "seccomp":
            if not value:
                raise InvalidArgument("invalid SecurityOpt: seccomp needs a value (unconfined or a profile)")
            seccomp = value
        elif key == "no-new-privileges":
            if value not in ("", "true", "false"):
                raise InvalidArgument(f"invalid SecurityOpt: no-new-privileges={value!r} (true or false)")
            nnp = value != "false"
        elif key in ("apparmor", "label") and value in ("unconfined", "disable"):
            continue                             # cove applies no AppArmor/SELinux profile
        else:
            raise InvalidArgument(f"invalid SecurityOpt {opt!r}: cove knows seccomp=unconfined|PROFILE and"
                                  " no-new-privileges")
    return seccomp, nnp


# -- the OCI config ---------------------------------------------------------------------------
def _host_devices() -> list[dict[str, Any]]:
    """``--privileged``: the host's device nodes (top of /dev), as Docker adds them."""
    import stat

    out = []
    for name in sorted(os.listdir("/dev")):
        path = os.path.join("/dev", name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            if name in ("console", "ptmx", "tty") or name.startswith("tty"):
                continue
            out.append({"path": path, "type": "c" if stat.S_ISCHR(st.st_mode) else "b",
                        "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                        "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid})
    return out


def process(args: list[str], env: dict[str, str], cwd: str, tty: bool, caps: list[str],
            no_new_privileges: bool) -> dict[str, Any]:
    """The OCI ``process`` (also what ``runc exec --process`` reads)."""
    return {
        "terminal": tty,
        "user": {"uid": 0, "gid": 0},
        "args": args,
        "env": [f"{k}={v}" for k, v in env.items()],
        "cwd": cwd or "/",
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": no_new_privileges,
        "rlimits": [],
    }


def user_mount(m: dict[str, Any]) -> dict[str, Any]:
    """One bind, volume or tmpfs mount of the spec as an OCI mount."""
    ro = ["ro"] if m.get("readonly") else []
    if m["type"] == "tmpfs":
        opts = ["nosuid", "nodev", "noexec", *ro]
        if m.get("size"):
            opts.append(f"size={int(m['size'])}")
        if m.get("mode"):
            opts.append(f"mode={int(m['mode']):o}")
        return {"destination": m["target"], "type": "tmpfs", "source": "tmpfs", "options": opts}
    return {"destination": m["target"], "type": "bind", "source": m["source"],
            "options": ["rbind", m.get("propagation") or "rprivate", *ro]}


def oci_config(spec: Any, root: str) -> dict[str, Any]:
    """config.json for ``spec`` (a :class:`~cove.runtime.spec.ContainerSpec`), rootfs at ``root``."""
    caps = capabilities(spec.cap_add, spec.cap_drop, spec.privileged)
    priv = spec.privileged
    ro = [] if priv else ["ro"]
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", *ro]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", *ro]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    ]
    uid_map, gid_map = getattr(spec, "uid_map", None), getattr(spec, "gid_map", None)
    if uid_map and gid_map and spec.netns and not getattr(spec, "userns", None):
        # a user namespace may mount sysfs only in a network namespace it owns; one that belongs
        # to the host's (--network container:NAME of a container without a user namespace): bind
        # the host's /sys read-only instead, as runc and Podman do for rootless containers
        mounts[3] = {"destination": "/sys", "type": "bind", "source": "/sys",
                     "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
    user = sorted(getattr(spec, "mounts", []), key=lambda m: m["target"].count("/"))
    mounts += [user_mount(m) for m in user]
    taken = {m["target"] for m in user}
    for target, source in sorted(spec.etc_files.items()):
        if "/" + target.lstrip("/") in taken:
            continue                       # as Docker: a user's mount on /etc/hosts wins
        mounts.append({"destination": "/" + target.lstrip("/"), "type": "bind", "source": source,
                       "options": ["rbind", "rprivate"]})
    namespaces: list[dict[str, Any]] = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup")]
    if spec.netns:
        namespaces.append({"type": "network", "path": spec.netns})
    if uid_map and gid_map:                       # --userns-remap: root inside is a subordinate id outside
        userns = getattr(spec, "userns", None)
        namespaces.append({"type": "user", "path": userns} if userns else {"type": "user"})
    resources: dict[str, Any] = {
        # Docker's rules: nothing but the standard nodes may be opened; mknod of any is allowed
        "devices": [{"allow": True, "access": "rwm"}] if priv else [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "access": "m"},
            {"allow": True, "type": "b", "access": "m"},
        ],
    }
    if spec.pids_limit:
        resources["pids"] = {"limit": spec.pids_limit}
    if spec.memory:
        resources["memory"] = {"limit": spec.memory}
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": f"{getattr(spec, 'cgroup_parent', '/cove').rstrip('/')}/{spec.id}",
        "maskedPaths": [] if priv else list(MASKED_PATHS),
        "readonlyPaths": [] if priv else list(READONLY_PATHS),
        "rootfsPropagation": "rslave",
    }
    if uid_map and gid_map:
        linux["uidMappings"] = [{"containerID": c, "hostID": h, "size": n} for c, h, n in uid_map]
        linux["gidMappings"] = [{"containerID": c, "hostID": h, "size": n} for c, h, n in gid_map]
    sysctls = getattr(spec, "sysctls", None)
    if sysctls:
        linux["sysctl"] = dict(sysctls)       # written by runc's init, inside the container's netns
    if priv:
        linux["devices"] = _host_devices()
    seccomp = seccomp_for(spec.seccomp, caps, priv)
    if seccomp is not None:
        linux["seccomp"] = seccomp
    return {
        "ociVersion": "1.0.2",
        "process": process(spec.cmd, spec.environment(), spec.workdir, spec.tty, caps, spec.no_new_privileges),
        "root": {"path": root, "readonly": False},
        "hostname": spec.hostname,
        "mounts": mounts,
        "linux": linux,
    }

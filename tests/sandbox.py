"""Run node scripts FOR REAL with bash inside a temporary root, with system commands stubbed.

A `Sandbox` is a throw-away directory:

    <base>/root     KATAK8S_ROOT: fake system files (etc/os-release, proc/cpuinfo,
                    proc/meminfo, dev/kvm, sys/module/..., etc/fstab); scripts write here
    <base>/bin      the ONLY directory on PATH: one stub per system/network command plus
                    symlinks to the real core utilities (cat, grep, sed, awk, install,
                    mkdir, cmp, sha256sum, tar, zstd, mktemp, ...), which run for real.
                    Anything else is "command not found" (exit 127), so a script can never
                    reach the host's systemctl or apt-get by accident.
    <base>/state    what the default stubs remember: installed packages (state/dpkg/<pkg>
                    holds the version), held packages, unit states, served URLs, facts
    <base>/calls.log  one record per stub invocation, written by ONE printf: the field
                    count, the command name, then each argument, every field ended by a
                    NUL byte ("3\\0sudo\\0-n\\0"). A C argv cannot hold NUL, so any argument
                    (newlines, quotes, empty strings, invalid UTF-8) round-trips exactly.

API (all paths given to the API are relative to the fake root unless they say otherwise):

    sb = Sandbox(tmp_path, ubuntu="24.04", arch="x86_64", cpu_flags=("vmx",), kvm=True,
                 mem_mib=16384, disk_gib=100, cpus=4, host_kernel="6.8.0-45-generic",
                 guest_kernel="6.12.28-kata")
    sb.stub("systemctl", "is-active*kubelet*", exit=3, stdout="inactive\\n")
        Program one command: `pattern` is a bash glob matched against the arguments
        joined by spaces ("$*"). The newest matching rule wins, then the default
        behaviour. A rule may set exit, stdout, stderr, files ({root-relative path: text},
        written into the root when the stub runs), run (bash code sourced by the stub with
        the original "$@", $ROOT, $STATE, $SB set; its status is the exit code) and
        times (the rule applies that many times, then falls through: flaky networks).
    sb.serve(url, data)              curl answers `url` with `data` (bytes or str); other
                                     URLs fail like `curl -f` on a 404 (exit 22)
    sb.package(name, *versions, files=None)
                                     apt-cache madison lists `versions` (newest first);
                                     `apt-get install name[=v]` records it as installed
                                     (state/dpkg/<name>) and copies `files` into the root;
                                     a version not listed fails like apt (exit 100)
    sb.installed(name, version)      pretend a package is already installed (BASE_PACKAGES are,
                                     as on a stock cloud image; sb.uninstall(name) removes one)
    sb.unit(name, active=True, enabled=True)   pretend a systemd unit's state
    sb.module(name, loadable=True)   modprobe of an unloadable module fails like the kernel
    sb.write(path, text, mode=0o644) / sb.read(path) / sb.exists(path) / sb.path(path)
    sb.snapshot()                    {root-relative path: (mtime_ns, sha256)} of every
                                     file, to prove a second run rewrote nothing
    sb.stub_program()                the stub's bash text (to place fake binaries inside
                                     archives, e.g. opt/kata/bin/kata-ctl: a copy logs and
                                     answers under its own file name)
    res = sb.run("node/10-kernel.sh", params, env=None, stdin=None, timeout=60)
        Render `params` (a dataclass, via components.nodes.phase.render_env, or a mapping of
        NAME -> value) to a params file and run `bash scripts/<script> <params file>`.
    res = sb.run_bundle(text)        run a rendered bundle (components.nodes.phase.render_program)
    res = sb.run_command(cmdline)    run a command line with bash -c (e.g. a Command's
                                     `delete` text: `sudo -n timeout 1800 bash -c '...'`)

    res.rc, res.stdout, res.stderr, res.ok
    res.calls                        [Call] of THIS run, in order; Call.argv, .name, .line
    res.called(name, pattern="*")    the calls of `name` whose arguments match the glob
    res.changing()                   calls that change the system or use the network
                                     (install, hold, restart, enable, modprobe, sysctl
                                     --system, swapoff, curl, gpg, ctr run, crictl runp,
                                     kubeadm init/join/pull, kubectl apply...); a second
                                     idempotent run must return []

Default stub behaviour (overridable per command with `stub`): see tests/sandbox_stub.sh. Every run
gets KATAK8S_ROOT, KATAK8S_SANDBOX, PATH=<base>/bin, HOME, LANG=C and a fresh log offset.
`sleep` is a logged no-op so retries and waits cost no wall time.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.nodes import library, phase

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts" / "remote"

# KATAK8S_SANDBOX_COREUTILS: a directory whose tools take precedence, e.g. uutils' Rust
# coreutils (Debian's rust-coreutils: /usr/lib/cargo/bin/coreutils), which Ubuntu 26.04
# ships as its coreutils (tests/test_rust_coreutils.py runs the node scripts on them).
COREUTILS_FIRST = os.environ.get("KATAK8S_SANDBOX_COREUTILS", "")
# Core utilities that run for real (symlinked into the sandbox's bin/ when present).
REAL_TOOLS = (
    "awk", "base64", "basename", "bash", "cat", "chmod", "chown", "cmp", "comm", "cp", "cut",
    "date", "diff", "dirname", "env", "expr", "find", "flock", "grep", "gzip", "head", "id", "install",
    "ln", "ls", "mkdir", "mktemp", "mv", "od", "openssl", "paste", "readlink", "realpath", "rm", "rmdir",
    "sed", "seq", "sh", "sha256sum", "sort", "stat", "tail", "tar", "tee", "touch", "tr",
    "uniq", "wc", "xargs", "zstd", "unzstd",
)

# System and network commands the scripts may call; each is a copy of STUB_PROGRAM.
STUBS = (
    "apt-cache", "apt-get", "apt-key", "apt-mark", "cloud-init", "containerd", "crictl", "crio",
    "ctr", "curl", "df", "dpkg", "dpkg-query", "gpg", "hostname", "iptables", "journalctl", "kata-ctl",
    "kata-runtime", "kubeadm", "kubectl", "kubelet", "modprobe", "mount", "nft", "pgrep", "reboot", "runc",
    "sleep", "sudo", "swapoff", "swapon", "sysctl", "systemctl", "timeout", "udevadm", "uname",
    "update-ca-certificates", "wget",
)

# (command, glob over the arguments) pairs that do NOT change the system; every other call
# of a command in CHANGING_COMMANDS counts as changing.
CHANGING_COMMANDS = frozenset({
    "apt-get", "apt-key", "apt-mark", "crictl", "ctr", "curl", "dpkg", "gpg", "iptables", "kubeadm",
    "kubectl", "modprobe", "mount", "nft", "reboot", "swapoff", "swapon", "sysctl", "systemctl", "wget",
    "update-ca-certificates", "udevadm",
})
READ_ONLY = (
    ("apt-get", "*--simulate*"), ("apt-get", "*-s *"),
    ("apt-mark", "*showhold*"), ("gpg", "*--show-keys*"),
    ("crictl", "*info*"), ("crictl", "*version*"), ("crictl", "*pods*"), ("crictl", "*ps*"),
    ("crictl", "*images*"), ("crictl", "*inspect*"), ("crictl", "*logs*"),
    ("ctr", "*version*"), ("ctr", "*plugins*"), ("ctr", "*images ls*"), ("ctr", "*image ls*"),
    ("ctr", "*images check*"), ("ctr", "*containers ls*"), ("ctr", "*tasks ls*"),
    ("dpkg", "*--print-architecture*"), ("dpkg", "-l*"), ("dpkg", "-s*"),
    ("iptables", "-L*"), ("iptables", "* -L*"), ("iptables", "-S*"), ("iptables", "* -S*"),
    ("iptables", "-C *"), ("iptables", "* -C *"), ("iptables", "*--list*"), ("iptables", "*--check *"),
    ("iptables", "--version"), ("iptables", "-V"),
    ("kubeadm", "version*"), ("kubeadm", "config images list*"), ("kubeadm", "config print*"),
    ("kubectl", "get*"), ("kubectl", "version*"), ("kubectl", "wait*"), ("kubectl", "config view*"),
    ("kubectl", "*--dry-run*"), ("kubectl", "cluster-info*"),
    ("modprobe", "*-n *"), ("modprobe", "*--dry-run*"), ("modprobe", "*--show-depends*"),
    ("nft", "-c *"), ("nft", "--check *"), ("nft", "list *"), ("nft", "*-a list *"), ("nft", "--version"),
    ("nft", "-v"),
    ("sysctl", "-n *"), ("sysctl", "-a*"), ("swapon", "--show*"), ("swapon", "-s*"),
    ("systemctl", "*is-active*"), ("systemctl", "*is-enabled*"), ("systemctl", "*is-failed*"),
    ("systemctl", "*show*"), ("systemctl", "*status*"), ("systemctl", "*cat *"),
    ("systemctl", "*list-units*"), ("systemctl", "*list-unit-files*"),
)

# Packages of the stock Ubuntu server cloud images that the scripts rely on (apt_source).
BASE_PACKAGES = ("ca-certificates", "curl", "gpg")

OS_RELEASE = {
    "24.04": ("noble", "Ubuntu 24.04.3 LTS", "24.04.3 LTS (Noble Numbat)"),
    "26.04": ("resolute", "Ubuntu 26.04 LTS", "26.04 LTS (Resolute Raccoon)"),
}

# The stub every faked command runs (a real script, so shellcheck sees it).
STUB_PROGRAM = (Path(__file__).resolve().parent / "sandbox_stub.sh").read_text()


@dataclass(frozen=True)
class Call:
    """One logged stub invocation."""

    argv: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.argv[0]

    @property
    def args(self) -> str:
        """The arguments joined by spaces: what `pattern` globs are matched against."""
        return " ".join(self.argv[1:])

    @property
    def line(self) -> str:
        return " ".join(self.argv)

    def matches(self, name: str, pattern: str = "*") -> bool:
        return self.name == name and fnmatch.fnmatchcase(self.args, pattern)

    @property
    def changing(self) -> bool:
        if self.name not in CHANGING_COMMANDS:
            return False
        return not any(self.matches(n, p) for n, p in READ_ONLY)


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: str
    stderr: str
    calls: tuple[Call, ...]

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def called(self, name: str, pattern: str = "*") -> list[Call]:
        return [c for c in self.calls if c.matches(name, pattern)]

    def changing(self) -> list[Call]:
        return [c for c in self.calls if c.changing]

    def __str__(self) -> str:  # handy in assertion messages
        calls = "\n".join(f"  {c.line}" for c in self.calls)
        return f"rc={self.rc}\n--- stderr ---\n{self.stderr}\n--- calls ---\n{calls}"


def parse_calls(data: bytes) -> tuple[Call, ...]:
    """Decode calls.log records: "<n>\\0" then n NUL-ended fields (name, arguments).

    Bytes that are not UTF-8 decode with surrogateescape, so nothing is lost or rejected."""
    fields = data.split(b"\0")
    if fields[-1]:
        raise ValueError(f"calls.log ends inside a record: {fields[-1][:80]!r}")
    fields.pop()
    calls, i = [], 0
    while i < len(fields):
        count = int(fields[i])
        argv = fields[i + 1:i + 1 + count]
        if count < 1 or len(argv) != count:
            raise ValueError(f"calls.log record {len(calls)} is truncated: {argv!r}")
        calls.append(Call(tuple(f.decode("utf-8", "surrogateescape") for f in argv)))
        i += 1 + count
    return tuple(calls)


def _cpuinfo(cpus: int, flags: tuple[str, ...]) -> str:
    base = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology cpuid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm abm"  # noqa: E501
    blocks = []
    for i in range(cpus):
        blocks.append(f"processor\t: {i}\nvendor_id\t: GenuineIntel\nmodel name\t: Intel Xeon Processor "
                      f"(Icelake)\nflags\t\t: {' '.join((base, *flags))}\n")
    return "\n".join(blocks) + "\n"


class Sandbox:
    """A temporary root + stub PATH in which node scripts run for real (see module doc)."""

    def __init__(self, base: Path, *, ubuntu: str = "24.04", arch: str = "x86_64",
                 cpu_flags: tuple[str, ...] = ("vmx",), kvm: bool = True, mem_mib: int = 16384,
                 disk_gib: int = 100, cpus: int = 4, host_kernel: str = "6.8.0-45-generic",
                 guest_kernel: str = "6.12.28-kata", hostname: str = "demo-worker-0",
                 swap: bool = False):
        self.base = Path(base)
        self.root = self.base / "root"
        self.bin = self.base / "bin"
        self.state = self.base / "state"
        self.log = self.base / "calls.log"
        self._rules = 0
        self._runs = 0
        for d in (self.root, self.bin, self.state / "facts", self.base / "home"):
            d.mkdir(parents=True, exist_ok=True)
        self.log.write_text("")
        stub = self.base / "stub"
        stub.write_text(STUB_PROGRAM)
        stub.chmod(0o755)
        for name in STUBS:
            (self.bin / name).symlink_to(stub)
        for tool in REAL_TOOLS:
            real = shutil.which(tool, path=f"{COREUTILS_FIRST}:/usr/local/bin:/usr/bin:/bin".lstrip(":"))
            if real and not (self.bin / tool).exists():
                (self.bin / tool).symlink_to(real)
        # The node's copy of scripts/remote, where components/nodes/library.py puts it: every
        # program (phase.render_program) runs its script from there, through launch.sh.
        shutil.copytree(SCRIPTS, self.path(library.remote_dir()) / "remote")
        self.fact("kernel", host_kernel)
        self.fact("arch", arch)
        self.fact("guest_kernel", guest_kernel)
        self.fact("hostname", hostname)
        self.fact("disk_kib", str(disk_gib * 1024 * 1024))
        if ubuntu in OS_RELEASE:
            code, pretty, version = OS_RELEASE[ubuntu]
            self.write("etc/os-release", (
                f'PRETTY_NAME="{pretty}"\nNAME="Ubuntu"\nVERSION_ID="{ubuntu}"\nVERSION="{version}"\n'
                f"VERSION_CODENAME={code}\nID=ubuntu\nID_LIKE=debian\nUBUNTU_CODENAME={code}\n"))
        else:  # e.g. "debian-12" for the unsupported-OS case
            self.write("etc/os-release", 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'
                       'VERSION_ID="12"\nVERSION_CODENAME=bookworm\n')
        self.write("proc/cpuinfo", _cpuinfo(cpus, cpu_flags))
        self.write("proc/meminfo", f"MemTotal:       {mem_mib * 1024} kB\nMemFree:        "
                   f"{mem_mib * 512} kB\nMemAvailable:   {mem_mib * 800} kB\n")
        self.write("proc/sys/kernel/osrelease", host_kernel + "\n")
        self.write("proc/sys/net/ipv4/ip_forward", "0\n")
        self.write("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
        self.write("etc/hostname", hostname + "\n")
        header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
        fstab = "LABEL=cloudimg-rootfs\t/\text4\tdiscard,errors=remount-ro\t0 1\n"
        if swap:
            header += "/swap.img                               file\t\t2097148\t\t0\t\t-2\n"
            fstab += "/swap.img\tnone\tswap\tsw\t0\t0\n"
        self.write("proc/swaps", header)
        self.write("etc/fstab", fstab)
        if kvm:
            self.write("dev/kvm", "")
        # What every Ubuntu server cloud image ships; a test removes one to model a minimal image.
        for pkg in BASE_PACKAGES:
            self.installed(pkg, "stub-base")

    # --- programming the fake system ---------------------------------------------------------
    def fact(self, name: str, value: str) -> None:
        (self.state / "facts" / name).write_text(value)

    def stub(self, command: str, pattern: str = "*", *, exit: int = 0, stdout: str = "",
             stderr: str = "", files: Mapping[str, str] | None = None, run: str | None = None,
             times: int | None = None) -> None:
        if command not in STUBS:
            raise ValueError(f"{command} is not stubbed; add it to sandbox.STUBS")
        self._rules += 1
        rule = self.state.parent / "rules" / command / f"{self._rules:05d}"
        rule.mkdir(parents=True)
        (rule / "pattern").write_text(pattern)
        (rule / "exit").write_text(str(exit))
        if stdout:
            (rule / "stdout").write_text(stdout)
        if stderr:
            (rule / "stderr").write_text(stderr)
        if run is not None:
            (rule / "run").write_text(run)
        if times is not None:
            (rule / "times").write_text(str(times))
        for rel, text in (files or {}).items():
            p = rule / "files" / rel.lstrip("/")
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)

    def serve(self, url: str, data: bytes | str) -> None:
        key = hashlib.sha256(url.encode()).hexdigest()
        d = self.state / "urls"
        d.mkdir(parents=True, exist_ok=True)
        (d / key).write_bytes(data.encode() if isinstance(data, str) else data)

    def package(self, name: str, *versions: str, files: Mapping[str, str] | None = None,
                repo: str | None = None) -> None:
        d = self.state / "apt"
        d.mkdir(parents=True, exist_ok=True)
        if versions:
            (d / name).write_text("".join(f"{v}\n" for v in versions))
        if repo:
            self.fact(f"repo-{name}", repo)
        for rel, text in (files or {}).items():
            p = self.state / "payload" / name / rel.lstrip("/")
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)

    def installed(self, name: str, version: str) -> None:
        d = self.state / "dpkg"
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(version + "\n")

    def uninstall(self, name: str) -> None:
        (self.state / "dpkg" / name).unlink(missing_ok=True)

    def held(self) -> list[str]:
        d = self.state / "hold"
        return sorted(p.name for p in d.iterdir()) if d.is_dir() else []

    def installed_version(self, name: str) -> str | None:
        p = self.state / "dpkg" / name
        return p.read_text().strip() if p.exists() else None

    def unit(self, name: str, *, active: bool = True, enabled: bool = True) -> None:
        d = self.state / "units"
        d.mkdir(parents=True, exist_ok=True)
        for suffix, on in (("active", active), ("enabled", enabled)):
            p = d / f"{name}.{suffix}"
            if on:
                p.touch()
            else:
                p.unlink(missing_ok=True)

    def unit_active(self, name: str) -> bool:
        return (self.state / "units" / f"{name}.active").exists()

    def module(self, name: str, *, loadable: bool = True, loaded: bool = False) -> None:
        d = self.state / "modules"
        d.mkdir(parents=True, exist_ok=True)
        marker = d / f"{name}.missing"
        if loadable:
            marker.unlink(missing_ok=True)
        else:
            marker.touch()
        if loaded:
            (self.root / "sys" / "module" / name).mkdir(parents=True, exist_ok=True)

    # --- files under the fake root -----------------------------------------------------------
    def path(self, rel: str) -> Path:
        return self.root / rel.lstrip("/")

    def write(self, rel: str, text: str | bytes, mode: int = 0o644) -> Path:
        p = self.path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(text)
        p.chmod(mode)
        return p

    def read(self, rel: str) -> str:
        return self.path(rel).read_text()

    def exists(self, rel: str) -> bool:
        return os.path.lexists(self.path(rel))

    def snapshot(self) -> dict[str, tuple[int, str]]:
        out = {}
        for p in sorted(self.root.rglob("*")):
            if p.is_file() and not p.is_symlink():
                out[str(p.relative_to(self.root))] = (p.stat().st_mtime_ns,
                                                      hashlib.sha256(p.read_bytes()).hexdigest())
        return out

    @staticmethod
    def stub_program() -> str:
        return STUB_PROGRAM

    # --- running -----------------------------------------------------------------------------
    def _env(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        env = {
            "PATH": str(self.bin),
            "HOME": str(self.base / "home"),
            "LANG": "C",
            "LC_ALL": "C",
            "TMPDIR": str(self.base / "tmp"),
            "KATAK8S_ROOT": str(self.root),
            "KATAK8S_SANDBOX": str(self.base),
        }
        (self.base / "tmp").mkdir(exist_ok=True)
        env.update(extra or {})
        return env

    def _exec(self, argv: list[str], env: Mapping[str, str] | None, stdin: str | None,
              timeout: float) -> Result:
        offset = self.log.stat().st_size
        proc = subprocess.run(argv, env=self._env(env), input=stdin if stdin is not None else "",
                              capture_output=True, text=True, timeout=timeout, cwd=self.base)
        with self.log.open("rb") as log:
            log.seek(offset)
            calls = parse_calls(log.read())
        return Result(proc.returncode, proc.stdout, proc.stderr, calls)

    def _params_file(self, params: Any) -> Path:
        self._runs += 1
        if dataclasses.is_dataclass(params):
            text = phase.render_env(params)
        else:
            text = "".join(f"{k}={shlex.quote(str(v))}\n" for k, v in (params or {}).items())
        p = self.base / f"params-{self._runs}.env"
        p.write_text(text)
        return p

    def run(self, script: str, params: Any = None, *, env: Mapping[str, str] | None = None,
            stdin: str | None = None, timeout: float = 60) -> Result:
        """bash scripts/<script> <rendered params>, with KATAK8S_PHASE = the script's stem."""
        pfile = self._params_file(params)
        extra = {"KATAK8S_PHASE": Path(script).stem, **(env or {})}
        return self._exec(["bash", str(SCRIPTS / script), str(pfile)], extra, stdin, timeout)

    def run_bundle(self, bundle: str, *, env: Mapping[str, str] | None = None,
                   stdin: str | None = None, timeout: float = 60) -> Result:
        self._runs += 1
        p = self.base / f"bundle-{self._runs}.sh"
        p.write_text(bundle)
        return self._exec(["bash", str(p)], env, stdin, timeout)

    def run_command(self, cmdline: str, *, env: Mapping[str, str] | None = None,
                    stdin: str | None = None, timeout: float = 60) -> Result:
        return self._exec(["bash", "-c", cmdline], env, stdin, timeout)

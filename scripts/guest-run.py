#!/usr/bin/env python3
"""Boot 1..3 QEMU guests for one guest test script and judge the outcome.

Usage: scripts/guest-run.py [options] tests/guest/NAME.sh

The script declares what it needs in header comments (first 40 lines):
    # guests: 2            number of guests (1..3), default 1
    # disks: 256M 64M      raw virtio disks per guest (vda, vdb, ...), default
                           "256M"; "none" for no disk
    # timeout: 300         seconds before hung guests are killed, default 600
    # memory: 1G           guest RAM, default 1G
    # boots: 2             boot the guests N times in sequence, default 1
    # kernel: fast         "debug" (default): build/out/bzImage, the
                           debugging kernel, with build/out/drbd.ko;
                           "fast": its non-debug twin build/out/bzImage-fast,
                           with build/out/fast/drbd.ko and build/modules-fast
                           (see tests/README.md, "Which kernel")
    # budget: 90           expected wall time in seconds (all boots); a run
                           that takes longer is reported, not failed
Command-line options override the header.

Each guest boots the kernel with build/initramfs.cpio.gz (see
scripts/make-initramfs.sh), sees the host root read-only, and gets:
  /results  -> build/logs/<test>/guest<i>/  (output.txt, rc, dmesg.txt)
  /shared   -> build/logs/<test>/shared/    (common to all guests: barriers)
Console logs: build/logs/<test>/guest<i>.console; QEMU's own messages:
build/logs/<test>/guest<i>.qemu.log. Disks and sockets live in build/run/<test>
and are deleted afterwards unless --keep.

Multi-boot ("# boots: N", N > 1): the guests are booted N times in sequence
with the SAME disks (a crash-recovery test writes in one boot and checks in
the next); the script runs in every boot and sees BOOT_INDEX (0..N-1) and
NBOOTS. The timeout applies to each boot. Logs are kept per boot:
guest<i>.boot<b>.console, guest<i>.boot<b>.qemu.log, and /results is
guest<i>/boot<b>/; /shared is common to all guests and all boots. A boot
other than the last may end in a deliberate power cut (lib.sh power_cut:
writes /results/power-cut, then resets the guest without syncing): that boot
needs no rc. A boot that fails (non-zero rc, no rc without a power cut,
timeout) ends the run: later boots are not started.

Guests i<j share one point-to-point virtio-net link (QEMU -netdev stream over a
unix socket, server on guest i); nothing is connected to the host network.

Pass = every guest wrote rc 0 (in every boot; a boot before the last may end
in a power cut instead), no guest printed "RESULT: FAIL", and no console log
or dmesg shows a kernel splat (BUG/WARNING/Oops/KASAN/lockdep/panic/...).
Output: one "PASS name" / "FAIL name (reason)" line per sub-result (lines
"RESULT: PASS|FAIL sub [message]" printed by a guest script) or per test, with
indented detail lines, then one line
    TIME name seconds boots budget kernel cpu
(wall seconds of the whole run, guest boots started, the declared budget or
"-", the kernel flavour, CPU seconds the guests' QEMUs used) that
tests/run-tests.sh turns into its timing table. Exit status 0 on
pass, 1 on failure, 2 on a harness error.
"""

import argparse
import ctypes
import fcntl
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Kernel log lines that fail a test wherever they appear. Case-sensitive on
# purpose: boot prints e.g. "kasan: KernelAddressSanitizer initialized" and
# lockdep's banner, which are not splats.
SPLAT_RE = re.compile(
    r"BUG:|WARNING:|Oops|general protection fault|KASAN|UBSAN|"
    r"possible circular locking|possible recursive locking|inconsistent lock state|"
    r"possible irq lock inversion|DEBUG_LOCKS_WARN_ON|suspicious RCU usage|"
    r"bad unlock balance|held lock freed|lock held when returning to user space|"
    r"Kernel panic|kernel BUG at|rust_panic|panicked at|hung_task|blocked for more than|"
    r"rcu_(?:sched|preempt)? ?(?:self-)?detected stall|detected stalls? on CPU|"
    r"list_(?:add|del) corruption|refcount_t: |Call Trace:|Unable to handle kernel"
)
# Lines the init scripts or the guest test script printed: prefixed on the
# console by scripts/make-initramfs.sh so they are not taken for kernel output.
USER_LINE_RE = re.compile(r"^\[g\d+\] ")
KERNEL_TS_RE = re.compile(r"\[\s*\d+\.\d+\]")
RESULT_RE = re.compile(r"^RESULT: (PASS|FAIL)\s+(\S+)\s*(.*)$")

DEFAULTS = {"guests": 1, "disks": "256M", "timeout": 600, "memory": "1G", "boots": 1,
            "kernel": "debug", "budget": None}
# What a "# kernel:" flavour boots: the image, and the command-line words
# that point the guest at the module and in-tree modules built for it.
KERNELS = {
    "debug": ("build/out/bzImage", []),
    "fast": ("build/out/bzImage-fast", ["rdrbd.drbd_ko={root}/build/out/fast/drbd.ko",
                                        "rdrbd.modules={root}/build/modules-fast"]),
}
MAX_GUESTS = 3
MAX_BOOTS = 10


def log(msg):
    print(f"guest-run: {msg}", file=sys.stderr, flush=True)


def parse_header(script):
    """Header comments '# key: value' in the first 40 lines of the script."""
    cfg = {}
    with open(script, encoding="utf-8", errors="replace") as f:
        for _, line in zip(range(40), f):
            m = re.match(r"^#\s*(guests|disks|timeout|memory|boots|kernel|budget)\s*:\s*(.*?)\s*$", line)
            if m:
                cfg[m.group(1)] = m.group(2)
    return cfg


def parse_size(text):
    """'256M', '1G', '4096' (bytes) -> bytes."""
    m = re.fullmatch(r"(\d+)([KMGT]?)i?B?", text.strip(), re.IGNORECASE)
    if not m:
        raise ValueError(f"bad size {text!r}")
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m.group(2).upper()]


def pairs(n):
    """(pair number, lower guest, higher guest); must match stage2.sh's order."""
    out, p = [], 0
    for a in range(n):
        for b in range(a + 1, n):
            p += 1
            out.append((p, a, b))
    return out


def set_pdeathsig():
    """Runs in the QEMU child: die with the harness, so no guest outlives it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass
    os.setsid()  # and keep terminal Ctrl-C to the harness, which cleans up



def host_tsc_khz():
    """The host's TSC frequency in kHz, or None. A TCG guest's TSC ticks at
    the host's rate, but the guest measures it against the emulated PIT,
    and on a loaded host that measurement can fail (CI: "tsc: Detected
    63.211 MHz processor" instead of 2100: the guest's clock then ran 33
    times too fast and a barrier timed out at once). Without ACPI the guest
    has no HPET or PM timer to refine it, so it is given the host's value
    (`tsc_early_khz`), read from sysfs or the host kernel's log."""
    try:
        with open("/sys/devices/system/cpu/cpu0/tsc_freq_khz") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        pass
    pattern = re.compile(r"tsc: (?:Refined TSC clocksource calibration:|Detected) ([0-9]+[.][0-9]+) MHz")
    for cmd in (["dmesg"], ["journalctl", "-k", "-b", "0", "--no-pager", "-q"]):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        found = pattern.findall(out)
        if found:
            # The refined value, when there is one, comes last.
            khz = round(float(found[-1]) * 1000)
            if 100_000 <= khz <= 10_000_000:
                return khz
    return None


HOST_TSC_KHZ = host_tsc_khz()

class Run:
    def __init__(self, script, opts):
        self.script = os.path.abspath(script)
        self.name = os.path.basename(script)[:-3] if script.endswith(".sh") else os.path.basename(script)
        hdr = parse_header(self.script)
        # Header key -> command-line option (--kernel names an image, --flavour the kind).
        attr = lambda k: {"kernel": "kernel_flavour"}.get(k, k)
        pick = lambda k: getattr(opts, attr(k)) if getattr(opts, attr(k)) is not None else hdr.get(k, DEFAULTS[k])
        self.nguests = int(pick("guests"))
        if not 1 <= self.nguests <= MAX_GUESTS:
            raise ValueError(f"guests must be 1..{MAX_GUESTS}, got {self.nguests}")
        self.nboots = int(pick("boots"))
        if not 1 <= self.nboots <= MAX_BOOTS:
            raise ValueError(f"boots must be 1..{MAX_BOOTS}, got {self.nboots}")
        disks = str(pick("disks")).split()
        self.disks = [] if disks in ([], ["none"]) else [parse_size(d) for d in disks]
        self.timeout = int(pick("timeout"))
        self.memory = str(pick("memory"))
        self.opts = opts
        self.flavour = str(pick("kernel"))
        if self.flavour not in KERNELS:
            raise ValueError(f"kernel must be one of {', '.join(KERNELS)}, got {self.flavour!r}")
        image, words = KERNELS[self.flavour]
        self.kernel = opts.kernel or os.path.join(ROOT, image)
        # Words given with --append come later on the command line and win.
        self.flavour_words = [w.format(root=ROOT) for w in words]
        budget = pick("budget")
        self.budget = int(budget) if budget is not None else None
        self.initrd = os.path.join(ROOT, "build/initramfs.cpio.gz")
        self.logdir = os.path.join(ROOT, "build/logs", self.name)
        self.rundir = os.path.join(ROOT, "build/run", self.name)
        self.sockdir = self.rundir
        self.procs = {}           # guest index -> QEMU of the boot in progress
        self.boots_run = 0        # boots started so far
        # Keyed by (guest, boot):
        self.exit_status = {}
        self.timed_out = set()
        self.started = {}
        self.script_started = {}
        self.finished = {}

    # --- where things are ------------------------------------------------------
    # One boot keeps the layout it always had (guest<i>.console, guest<i>/);
    # with several, every boot has its own console, QEMU log and results.
    def boot_suffix(self, b):
        return f".boot{b}" if self.nboots > 1 else ""

    def results_dir(self, i, b):
        gdir = os.path.join(self.logdir, f"guest{i}")
        return os.path.join(gdir, f"boot{b}") if self.nboots > 1 else gdir

    def console_path(self, i, b):
        return os.path.join(self.logdir, f"guest{i}{self.boot_suffix(b)}.console")

    def qemu_log_path(self, i, b):
        return os.path.join(self.logdir, f"guest{i}{self.boot_suffix(b)}.qemu.log")

    def tag(self, i, b):
        """How issues name a guest (and boot): guest0, guest0.boot1."""
        return f"guest{i}{self.boot_suffix(b)}"

    # --- setup ---------------------------------------------------------------
    def prepare(self):
        if not os.path.isfile(self.kernel):
            raise FileNotFoundError(f"no kernel at {self.kernel} (scripts/build-kernel.sh {self.flavour} builds it)")
        mk = os.path.join(ROOT, "scripts/make-initramfs.sh")
        if not os.path.isfile(self.initrd) or os.path.getmtime(self.initrd) < os.path.getmtime(mk):
            subprocess.run([mk], check=True, stdout=subprocess.DEVNULL)
        for d in (self.logdir, self.rundir):
            shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.join(self.logdir, "shared"))
        os.makedirs(self.rundir)
        for i in range(self.nguests):
            for b in range(self.nboots):
                os.makedirs(self.results_dir(i, b), exist_ok=True)
            for k, size in enumerate(self.disks):
                path = self.disk_path(i, k)
                with open(path, "wb") as f:
                    f.truncate(size)  # sparse, all zeroes; kept across boots
        # sun_path holds 108 bytes: a deep checkout needs a shorter socket folder.
        if len(os.path.join(self.rundir, "net-99.sock")) > 100:
            self.sockdir = tempfile.mkdtemp(prefix="rdrbd-net-")

    def disk_path(self, i, k):
        return os.path.join(self.rundir, f"guest{i}-disk{k}.img")

    def sock_path(self, p):
        return os.path.join(self.sockdir, f"net-{p}.sock")

    def qemu_cmd(self, i, b):
        append = " ".join([
            # no_timer_check: the IO-APIC timer probe counts ticks over a
            # busy wait, which an emulated CPU on a loaded host can miss
            # (CI: "IO-APIC + timer doesn't work!" panic at boot).
            "console=ttyS0", "panic=-1", "printk.time=1", "no_timer_check",
        ] + ([f"tsc_early_khz={HOST_TSC_KHZ}"] if HOST_TSC_KHZ else []) + [
            f"rdrbd.script={self.script}", f"rdrbd.root={ROOT}", f"rdrbd.test={self.name}",
            f"rdrbd.guest={i}", f"rdrbd.nguests={self.nguests}", f"rdrbd.timeout={self.timeout}",
            f"rdrbd.boot={b}", f"rdrbd.nboots={self.nboots}",
        ] + self.flavour_words + self.opts.append)
        gdir = self.results_dir(i, b)
        cmd = [
            self.opts.qemu, "-nodefaults", "-no-user-config", "-display", "none",
            "-accel", "tcg,thread=multi", "-cpu", self.opts.cpu, "-smp", "2", "-m", self.memory, "-no-reboot",
            "-kernel", self.kernel, "-initrd", self.initrd, "-append", append,
            "-serial", f"file:{self.console_path(i, b)}",
            "-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
            "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
            "-fsdev", f"local,id=results,path={gdir},security_model=none",
            "-device", "virtio-9p-pci,fsdev=results,mount_tag=results",
            "-fsdev", f"local,id=shared,path={self.logdir}/shared,security_model=none",
            "-device", "virtio-9p-pci,fsdev=shared,mount_tag=shared",
        ]
        for k in range(len(self.disks)):
            # discard=unmap: a discard punches a hole in the image (it reads
            # back zeroes), as a thin or SSD disk frees the blocks; without
            # it QEMU drops discards and the data stays.
            cmd += ["-drive", f"file={self.disk_path(i, k)},format=raw,if=virtio,cache=unsafe,discard=unmap"]
        # Discards in chunks of 64 KiB (as many SSDs and thin pools): a
        # discard's partial chunks at either edge are zeroed, not discarded.
        cmd += ["-global", "virtio-blk-pci.discard_granularity=65536"]
        for p, a, c in pairs(self.nguests):
            if i not in (a, c):
                continue
            server = "on" if i == a else "off"
            cmd += ["-netdev", f"stream,id=n{p},server={server},addr.type=unix,addr.path={self.sock_path(p)}",
                    "-device", f"virtio-net-pci,netdev=n{p},mac=52:54:00:d8:{p:02x}:{i:02x}"]
        return cmd

    # --- running -------------------------------------------------------------
    def start(self, i, b):
        # A client's QEMU fails at once if its server's socket is not listening
        # yet: wait for the sockets of lower-index guests before starting i.
        need = [self.sock_path(p) for p, a, c in pairs(self.nguests) if c == i]
        deadline = time.monotonic() + 30
        while not all(os.path.exists(s) for s in need):
            if time.monotonic() > deadline or any(self.procs[j].poll() is not None for j in self.procs):
                raise RuntimeError(f"guest {i}: peer sockets {need} never appeared (see *.qemu.log)")
            time.sleep(0.05)
        qlog = open(self.qemu_log_path(i, b), "wb")
        cmd = self.qemu_cmd(i, b)
        qlog.write((" ".join(cmd) + "\n").encode())
        qlog.flush()
        self.started[(i, b)] = time.monotonic()
        self.procs[i] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qlog, stderr=qlog,
                                         preexec_fn=set_pdeathsig)
        qlog.close()

    def stop(self, i, why):
        p = self.procs[i]
        if p.poll() is not None:
            return
        log(f"{self.name}: guest {i}: {why}: killing QEMU (pid {p.pid})")
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def follow(self, b, offsets):
        """--follow: copy new console output of every guest to stderr."""
        for i in self.procs:
            try:
                with open(self.console_path(i, b), "rb") as f:
                    f.seek(offsets.get(i, 0))
                    data = f.read()
            except FileNotFoundError:
                continue
            cut = data.rfind(b"\n") + 1
            if cut:
                offsets[i] = offsets.get(i, 0) + cut
                tag = f"{i}.{b}" if self.nboots > 1 else f"{i}"
                for line in data[:cut].decode(errors="replace").splitlines():
                    sys.stderr.write(f"{tag}| {line}\n")
        sys.stderr.flush()

    def wait_all(self, b):
        deadline = time.monotonic() + self.timeout
        offsets = {}
        while True:
            now = time.monotonic()
            running = [i for i, p in self.procs.items() if p.poll() is None]
            for i, p in self.procs.items():
                k, gdir = (i, b), self.results_dir(i, b)
                if k not in self.script_started and os.path.exists(os.path.join(gdir, "output.txt")):
                    self.script_started[k] = now - self.started[k]
                if p.poll() is not None and k not in self.finished:
                    self.finished[k] = now - self.started[k]
                    self.exit_status[k] = p.returncode
                    if not any(os.path.exists(os.path.join(gdir, f)) for f in ("rc", "power-cut")):
                        # Crashed guest: make the others' barriers fail now.
                        open(os.path.join(self.logdir, "shared", f"abort.host-guest{i}"), "w").close()
            if self.opts.follow:
                self.follow(b, offsets)
            if not running:
                return
            if now > deadline:
                for i in running:
                    self.timed_out.add((i, b))
                    self.stop(i, f"timed out after {self.timeout} s")
                continue
            time.sleep(0.2)

    def read_rc(self, i, b):
        try:
            with open(os.path.join(self.results_dir(i, b), "rc")) as f:
                return int(f.read().strip())
        except (FileNotFoundError, ValueError):
            return None

    def power_cut(self, i, b):
        return self.read_rc(i, b) is None and os.path.exists(os.path.join(self.results_dir(i, b), "power-cut"))

    def boot_ok(self, b):
        """Whether boot b ended so that the next boot makes sense."""
        for i in range(self.nguests):
            if (i, b) in self.timed_out:
                return False
            if not (self.read_rc(i, b) == 0 or self.power_cut(i, b)):
                return False
        return True

    def run(self):
        self.prepare()
        sizes = " ".join(f"{d >> 20}M" for d in self.disks) or "none"
        boots = f", {self.nboots} boots" if self.nboots > 1 else ""
        log(f"{self.name}: {self.nguests} guest(s), disks {sizes}{boots}, {self.flavour} kernel, timeout {self.timeout} s, "
            f"logs in {os.path.relpath(self.logdir, ROOT)}/")
        try:
            for b in range(self.nboots):
                if b:
                    # Stale sockets of the last boot's servers would make
                    # start() think they listen already.
                    for p, _, _ in pairs(self.nguests):
                        try:
                            os.unlink(self.sock_path(p))
                        except FileNotFoundError:
                            pass
                    log(f"{self.name}: starting boot {b} (boots 0..{self.nboots - 1})")
                self.boots_run = b + 1
                self.procs = {}
                for i in range(self.nguests):
                    self.start(i, b)
                self.wait_all(b)
                if b + 1 < self.nboots and not self.boot_ok(b):
                    log(f"{self.name}: boot {b} failed: later boots are not started")
                    break
        finally:
            for i in list(self.procs):
                self.stop(i, "harness exiting")
            if not self.opts.keep:
                shutil.rmtree(self.rundir, ignore_errors=True)
            if self.sockdir != self.rundir:
                shutil.rmtree(self.sockdir, ignore_errors=True)

    # --- judging -------------------------------------------------------------
    def splats(self, i, b):
        """Offending kernel lines in guest i's dmesg and console log of boot b."""
        found = []
        paths = [os.path.join(self.results_dir(i, b), "dmesg.txt"), self.console_path(i, b)]
        for path in paths:
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    lines = f.read().splitlines()
            except FileNotFoundError:
                continue
            for line in lines:
                text = line
                if USER_LINE_RE.match(line):
                    # Userspace output; but a kernel message may have been
                    # written into the middle of it on the serial line.
                    m = KERNEL_TS_RE.search(line)
                    if not m:
                        continue
                    text = line[m.start():]
                if SPLAT_RE.search(text):
                    key = KERNEL_TS_RE.sub("", text).strip()
                    if key not in [k for k, _ in found]:
                        found.append((key, text.strip()))
        return [t for _, t in found]

    def judge(self):
        """-> list of (ok, name, reason, detail lines)."""
        results, issues, details = [], [], []
        last = self.nboots - 1
        for i in range(self.nguests):
            for b in range(self.nboots):
                tag = self.tag(i, b)
                if b >= self.boots_run:
                    issues.append(f"{tag}: not run (boot {b - 1} failed)")
                    break
                gdir = self.results_dir(i, b)
                prefix = self.name + (f"/guest{i}" if self.nguests > 1 else "") + (f"/boot{b}" if self.nboots > 1 else "")
                output = []
                try:
                    with open(os.path.join(gdir, "output.txt"), encoding="utf-8", errors="replace") as f:
                        output = f.read().splitlines()
                except FileNotFoundError:
                    pass
                nfail = 0
                for line in output:
                    m = RESULT_RE.match(line)
                    if m:
                        ok = m.group(1) == "PASS"
                        nfail += not ok
                        results.append((ok, f"{prefix}/{m.group(2)}", m.group(3), []))
                rc = self.read_rc(i, b)
                cut = self.power_cut(i, b)
                bad_end = True
                if (i, b) in self.timed_out:
                    issues.append(f"{tag}: timed out after {self.timeout} s")
                elif cut and b < last:
                    bad_end = False   # a deliberate power cut: no rc expected
                elif cut:
                    issues.append(f"{tag}: power cut in the last boot (nothing would check after it)")
                elif rc is None:
                    issues.append(f"{tag}: no exit code (QEMU exit status {self.exit_status.get((i, b))}; "
                                  f"crashed, or the script never started)")
                elif rc != 0 and nfail == 0:
                    issues.append(f"{tag}: script exited with {rc}")
                else:
                    bad_end = rc != 0
                if bad_end and output:
                    details += [f"{tag} output (last lines):"] + ["  " + l for l in output[-15:]]
                bad = self.splats(i, b)
                if bad:
                    issues.append(f"{tag}: kernel log: {bad[0]}")
                    details += [f"{tag} kernel log:"] + ["  " + l for l in bad[:25]]
                    if len(bad) > 25:
                        details.append(f"  ... {len(bad) - 25} more")
        if issues:
            details.append(f"logs: {os.path.relpath(self.logdir, ROOT)}/")
            results.append((False, self.name, "; ".join(issues), details))
        elif not results:
            results.append((True, self.name, "", []))
        return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("script")
    ap.add_argument("--guests", type=int)
    ap.add_argument("--disks", help='e.g. "256M 64M" or none')
    ap.add_argument("--timeout", type=int)
    ap.add_argument("--memory")
    ap.add_argument("--boots", type=int, help="boot the guests N times in sequence, same disks")
    ap.add_argument("--budget", type=int, help="expected wall time in seconds (reported if exceeded)")
    ap.add_argument("--flavour", dest="kernel_flavour", choices=sorted(KERNELS),
                    help="which kernel (header '# kernel:'): debug or fast")
    ap.add_argument("--kernel", help="a kernel image instead of the flavour's")
    ap.add_argument("--append", action="append", default=[],
                    help="extra kernel command-line words, e.g. rdrbd.drbd_ko=PATH (repeatable)")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    # RDRAND lets the kernel seed its RNG at boot; without it getrandom()
    # (mkfs.ext4, ...) blocks for seconds under TCG.
    ap.add_argument("--cpu", default="qemu64,+rdrand")
    ap.add_argument("--keep", action="store_true", help="keep disk images in build/run/<test>")
    ap.add_argument("--follow", "-f", action="store_true", help="copy console output to stderr live")
    opts = ap.parse_args()
    # SIGTERM (a CI timeout, kill): unwind through the cleanup that stops QEMU.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    try:
        run = Run(opts.script, opts)
    except (OSError, ValueError) as e:
        print(f"FAIL {os.path.basename(opts.script)[:-3]} (harness: {e})")
        return 2
    os.makedirs(os.path.join(ROOT, "build/run"), exist_ok=True)
    # Two runs of one test would share logs and disks: take turns.
    lock = open(os.path.join(ROOT, "build/run", f"{run.name}.lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    t0 = time.monotonic()
    try:
        run.run()
    except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
        print(f"FAIL {run.name} (harness: {e})")
        return 2
    except KeyboardInterrupt:
        print(f"FAIL {run.name} (interrupted)")
        return 2
    results = run.judge()
    failed = 0
    for ok, name, reason, details in results:
        print(f"PASS {name}" if ok else f"FAIL {name}" + (f" ({reason})" if reason else ""))
        for d in details:
            print(f"    {d}")
        failed += not ok
    elapsed = time.monotonic() - t0
    timing = ", ".join(
        f"{run.tag(i, b)}: script started {run.script_started[(i, b)]:.1f} s after launch"
        for i, b in sorted(run.script_started))
    log(f"{run.name}: {'failed' if failed else 'passed'} in {elapsed:.1f} s ({timing or 'no script started'})")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"TIME {run.name} {elapsed:.1f} {run.boots_run * run.nguests} "
          f"{run.budget if run.budget is not None else '-'} {run.flavour} "
          f"{usage.ru_utime + usage.ru_stime:.0f}")
    sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

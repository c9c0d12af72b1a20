"""Shared plumbing of the benchmark scripts: generate a world, run a child, measure it.

Why a child process for everything measured: peak resident memory is only meaningful per
process, and ``os.wait4`` hands back the child's own rusage (its ``ru_maxrss``), so each tool
is charged for exactly what it used and nothing of the benchmark driver. Wall time is taken
around the whole child, interpreter start and imports included, because that is what a data
team waits for.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = VENV_BIN / "python"
LINKAGE = VENV_BIN / "linkage"
DEMO_CONFIG = REPO / "configs" / "demo.yaml"


@dataclass
class ChildRun:
    """What one measured child process cost, and how it ended."""

    argv: list[str]
    wall_s: float
    peak_rss_gb: float
    returncode: int
    stdout: str
    stderr: str
    encoding_fallback: bool = False
    cpu_s: float = 0.0  # user + system CPU of the child: far steadier than wall on a busy machine
    load_before: float = 0.0  # 1-minute load average when it started: others' work skews timings
    code: str = ""  # code_fingerprint() when our run started
    code_changed: bool = False  # the engine's files changed while it ran

    def as_dict(self) -> dict:
        out = asdict(self)
        out.pop("stdout")
        out["stderr_tail"] = self.stderr[-2000:]
        out.pop("stderr")
        return out


def run_measured(argv: list[str], cwd: Path | None = None, env: dict | None = None) -> ChildRun:
    """Run argv to completion; wall time and the child's own peak RSS (via wait4)."""
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    out_path = tmp / f"bench-child-{os.getpid()}-{time.time_ns()}"
    load = os.getloadavg()[0]
    with open(f"{out_path}.out", "w+b") as out, open(f"{out_path}.err", "w+b") as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    for suffix in (".out", ".err"):
        Path(f"{out_path}{suffix}").unlink(missing_ok=True)
    # Linux reports ru_maxrss in KiB.
    return ChildRun([str(a) for a in argv], round(wall, 2), round(usage.ru_maxrss / 2**20, 3),
                    child.returncode, stdout, stderr,
                    cpu_s=round(usage.ru_utime + usage.ru_stime, 2), load_before=round(load, 2))


def fastest(attempts: list[tuple[ChildRun, object]]) -> tuple[ChildRun, object, list[float]]:
    """Best of several runs of one measurement: (fastest successful, its payload, all walls).

    On a shared machine other work only ever adds time, so the minimum is the best estimate of
    what the tool itself costs; all wall times are kept so the spread stays visible.
    """
    walls = [c.wall_s for c, _ in attempts]
    good = [a for a in attempts if a[1] is not None] or attempts
    child, payload = min(good, key=lambda a: a[0].wall_s)
    return child, payload, walls


def code_fingerprint() -> str:
    """Short hash of the engine, the matchers and the demo config as they are on disk now.

    The tree changes while benchmarks run; the fingerprint says which results came from the
    same code, so two figures are only compared when their fingerprints agree.
    """
    digest = hashlib.sha256()
    files = sorted([*(REPO / "linkage").rglob("*.py"), *(REPO / "matchers").rglob("*.py"),
                    DEMO_CONFIG])
    for path in files:
        digest.update(str(path.relative_to(REPO)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def world_dir(workdir: Path, persons: int) -> Path:
    """One folder per size: data/demo, configs/demo.yaml and out/demo, as the demo job expects."""
    return workdir / f"persons-{persons}"


def ensure_world(workdir: Path, persons: int, seed: int) -> Path:
    """Generate the synthetic world once; a later benchmark on the same size reuses it.

    world.json records the persons and seed it was made with, so a stale world made with other
    settings is regenerated instead of silently measured.
    """
    root = world_dir(workdir, persons)
    data = root / "data" / "demo"
    meta = data / "world.json"
    if meta.is_file():
        info = json.loads(meta.read_text(encoding="utf-8"))
        same = info.get("persons") == persons and info.get("seed") == seed
        if same and (data / "truth.csv").is_file():
            return root
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    print(f"generating {persons:,} persons (seed {seed}) in {data}", file=sys.stderr, flush=True)
    done = subprocess.run([str(LINKAGE), "synth", "--persons", str(persons), "--seed", str(seed),
                           "--out", str(data)], check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"linkage synth failed:\n{done.stderr[-3000:]}")
    return root


def install_config(root: Path, pin_encodings: bool, household: bool | None = None) -> Path:
    """Copy configs/demo.yaml beside the data, so its relative paths resolve to this world.

    With pin_encodings, each source gets the encoding world.json says it was written in
    instead of 'auto'. That is an escape hatch for a broken detector, not the default: the
    benchmark measures what a data team runs.

    ``household`` True or False sets the config's ``household: {enabled: ...}`` (the
    ablation); the copy is then named demo-household-on.yaml / -off.yaml. None leaves the
    config as it is.
    """
    switch = "" if household is None else f"-household-{'on' if household else 'off'}"
    target = root / "configs" / f"demo{switch}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    if pin_encodings:
        world = json.loads((root / "data" / "demo" / "world.json").read_text(encoding="utf-8"))
        files = world["files"]
        for info in files.values():
            pattern = rf"^(\s*)path: \.\./data/demo/{re.escape(info['path'])}.*$"
            text = re.sub(pattern, rf"\g<0>\n\g<1>encoding: {info['encoding']}", text,
                          flags=re.MULTILINE)
    if household is not None:
        text = with_household(text, household)
    target.write_text(text, encoding="utf-8")
    return target


def with_household(text: str, enabled: bool) -> str:
    """The config text with household linkage switched on or off.

    A config without a top-level ``household`` key gets the section appended, so the file
    stays as written (comments and all); one that has it is rewritten through YAML.
    """
    import yaml

    data = yaml.safe_load(text) or {}
    if "household" not in data:
        return text.rstrip("\n") + f"\n\nhousehold:\n  enabled: {'true' if enabled else 'false'}\n"
    section = data["household"] if isinstance(data["household"], dict) else {}
    data["household"] = {**section, "enabled": enabled}
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def household_enabled(text: str) -> bool:
    """Whether a config's household linkage is on (it is unless the config says otherwise)."""
    import yaml

    section = (yaml.safe_load(text) or {}).get("household") or {}
    return bool(section.get("enabled", True)) if isinstance(section, dict) else True


def run_ours(root: Path, pin_encodings: bool,
             household: bool | None = None) -> tuple[ChildRun, dict | None]:
    """`linkage run` on the world in root, from a clean output folder; (cost, summary.json).

    The output folder (and its SQLite store) is removed first: a previous run's entities would
    otherwise be read back for stable ids, and that is not the cost of a first run.

    If the run dies reading a file with a UnicodeDecodeError under 'auto' encodings, it is
    reported and retried once with the encodings pinned, so one detector bug does not cost the
    whole benchmark; the returned ChildRun then carries encoding_fallback=True.
    """
    code = code_fingerprint()
    child, summary = _run_ours_once(root, pin_encodings, household)
    if summary is None and not pin_encodings and "UnicodeDecodeError" in child.stderr:
        report_failure("linkage run with encoding 'auto'", child)
        print("WARNING: retrying with the encodings pinned from world.json", file=sys.stderr)
        child, summary = _run_ours_once(root, True, household)
        child.encoding_fallback = True
    child.code = code
    child.code_changed = code_fingerprint() != code
    return child, summary


def _run_ours_once(root: Path, pin_encodings: bool,
                   household: bool | None = None) -> tuple[ChildRun, dict | None]:
    config = install_config(root, pin_encodings, household)
    out = root / "out" / "demo"
    if out.exists():
        shutil.rmtree(out)
    child = run_measured([str(LINKAGE), "run", str(config), "--truth",
                          str(root / "data" / "demo" / "truth.csv"), "--quiet"], cwd=REPO)
    summary_path = out / "summary.json"
    if child.returncode != 0 or not summary_path.is_file():
        return child, None
    return child, json.loads(summary_path.read_text(encoding="utf-8"))


def report_failure(what: str, child: ChildRun) -> None:
    print(f"{what} failed (exit {child.returncode}); last lines of its stderr:", file=sys.stderr)
    print("\n".join(child.stderr.strip().splitlines()[-15:]), file=sys.stderr)


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))

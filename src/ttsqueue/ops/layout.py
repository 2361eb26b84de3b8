"""Where the supervisor keeps its state: PID files and the configuration recorded at `start`
under `var/run`, logs under `var/log`.

The var directory defaults to `<root>/var` and can be moved with `TTSQ_VAR_DIR` (tests use
this so they never touch the checkout's own processes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ttsqueue.addresses import env_value


@dataclass(frozen=True, slots=True)
class Layout:
    root: Path
    var_dir: Path

    @classmethod
    def discover(cls, root: Path | None = None) -> Layout:
        base = (root or Path.cwd()).resolve()
        var = env_value("TTSQ_VAR_DIR", base)
        var_dir = Path(var).expanduser() if var else base / "var"
        if not var_dir.is_absolute():
            var_dir = base / var_dir
        return cls(root=base, var_dir=var_dir)

    @property
    def run_dir(self) -> Path:
        return self.var_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    @property
    def lock_file(self) -> Path:
        return self.run_dir / "supervisor.lock"

    @property
    def config_record(self) -> Path:
        """The configuration recorded at `start` (ops/recorded.py), mode 0600."""
        return self.run_dir / "config.json"

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def ensure_dirs(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)

"""Output: the Writer that puts every file of the report into the output folder atomically (per-process
temporary, fsync, rename, directory fsync, as the C++ write_file_atomic) and remembers what it wrote, for text,
CSV tables (fmt_cell: how a value is spelled in a cell) and matplotlib figures (PNG + SVG, with the metadata
that would change from run to run left out). Checked by tests/report/test_report.sh (no temporary files left).
"""
import csv
import io
import math
import os


def fmt_cell(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ""
    return str(v)


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Writer:
    """Writes the report's files into the folder out (created); written lists their paths in order."""

    def __init__(self, out):
        self.out = out
        self.written = []
        os.makedirs(out, exist_ok=True)

    def path(self, name):
        return os.path.join(self.out, name)

    def _tmp(self, name):
        return os.path.join(self.out, f".{name}.tmp{os.getpid()}")

    def _commit(self, tmp, name):
        # As the C++ writer (write_file_atomic): per-process temp, fsync, rename, directory fsync.
        fsync_path(tmp)
        os.replace(tmp, self.path(name))
        try:
            fsync_path(self.out)
        except OSError:
            pass  # some file systems refuse fsync on a directory
        self.written.append(self.path(name))

    def text(self, name, text):
        tmp = self._tmp(name)
        with open(tmp, "w", encoding="utf-8", errors="replace", newline="") as f:
            f.write(text)
        self._commit(tmp, name)

    def csv(self, name, cols, rows):
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow([fmt_cell(r.get(c)) for c in cols])
        self.text(name, buf.getvalue())

    def figure(self, name, fig):
        for ext, meta in (("png", {"Software": None}), ("svg", {"Date": None})):
            tmp = self._tmp(f"{name}.{ext}")
            fig.savefig(tmp, format=ext, dpi=150, metadata=meta, bbox_inches="tight")
            self._commit(tmp, f"{name}.{ext}")

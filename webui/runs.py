"""Runs from the browser: a community's config as a form (each field with its
documentation as a tooltip), saved and loaded as TOML; a dataset uploaded and judged
as the CLI judges it; `gridledger simulate` started as a background job (webui/jobs.py)
with its progress; the runs listed and two compared.

Enabled by RUNS_DIR (`gridledger serve --runs DIR`; the demo and serve default to
a runs folder beside the state directory). Without it the pages say how.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, send_from_directory, url_for
from werkzeug.utils import secure_filename

from node.data.config import CommunityConfig, default_config, load_config
from node.data.config_form import config_from_form, config_to_toml, form_fields
from node.errors import ConfigError, InputError
from node.index.store import Index
from node.metrics.kpis import COMPARISON_KPIS, RUN_KPIS
from webui import jobs
from webui.charts import Series, line_chart
from webui.export import csv_response
from webui.series import time_series

bp = Blueprint("runs", __name__)

# The rows of a run's results and of a comparison: (flat KPI key, label, unit).
KPIS = ([("intervals", "intervals settled", "steps"), ("participants", "homes", "homes")]
        + [(k.name, k.label, k.unit) for k in RUN_KPIS]
        + [(f"baseline_{k}", f"baseline: {label}", unit) for k, label, unit in
           (("adjusted_cost", "cost, stored energy valued", "currency"), ("grid_import_kwh", "grid import", "kWh"),
            ("grid_export_kwh", "grid export", "kWh"), ("self_sufficiency", "self-sufficiency", "share"))]
        + [(k.name, k.label, k.unit) for k in COMPARISON_KPIS] + [("gas_used", "gas", "steps")])

@bp.record_once
def _configure(state) -> None:
    state.app.config.setdefault("RUNS_DIR", None)
    # Limits of a run started from a browser: the machine runs it, not the visitor's.
    state.app.config.setdefault("RUNS_MAX_HOMES", 2000)
    state.app.config.setdefault("RUNS_MAX_DAYS", 31)


def runs_dir() -> Path | None:
    root = current_app.config.get("RUNS_DIR")
    return Path(root) if root else None


def _root() -> Path:
    root = runs_dir()
    if root is None:
        abort(404, "this server runs no simulations: start it with `gridledger serve --runs DIR` to run them from the browser")
    return root


def _run(name: str) -> jobs.Run:
    run = jobs.get_run(_root(), name)
    if run is None:
        abort(404, f"there is no run {name!r}")
    return run


@bp.get("/runs")
def list_all():
    root = runs_dir()
    found = jobs.runs(root) if root else []
    return render_template("runs.html", root=root, runs=found,
                           progress={r.name: r.progress() for r in found if r.status == "running"})


@bp.get("/runs/new")
def new():
    """The form, with the defaults or the config of the run ?from= (to edit and run again)."""
    config = default_config()
    source = request.args.get("from")
    if source:
        config = _config_of(_run(source))
    return _form(config, name=_free_name(source or "run"))


@bp.post("/runs/new/load")
def load():
    """The form filled from an uploaded config file."""
    upload = request.files.get("config")
    if upload is None or not upload.filename:
        return _form(default_config(), error="choose a config file (TOML) to load", status=400)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "community.toml"
        upload.save(path)
        try:
            config = load_config(path)  # the file's errors exactly as `--config FILE` gives them
        except ConfigError as exc:
            return _form(default_config(), error=str(exc).replace(str(path), upload.filename), status=400)
    return _form(config, name=_free_name(Path(upload.filename).stem))


@bp.post("/runs/config.toml")
def save():
    """The form's config as a TOML file to download."""
    try:
        config = config_from_form(request.form)
    except ConfigError as exc:
        return _form(None, error=str(exc), status=400)
    return Response(config_to_toml(config), mimetype="application/toml",
                    headers={"Content-Disposition": 'attachment; filename="community.toml"'})


@bp.post("/runs")
def start():
    """Judges the form and the dataset as `gridledger simulate` would, then starts it."""
    root = _root()
    name = request.form.get("name", "").strip()
    policy = request.form.get("meter_policy", "strict")
    folder = None
    try:
        config = config_from_form(request.form)
        _check_size(config)
        if policy not in ("strict", "repair"):
            raise InputError(f"meter policy must be strict or repair, got {policy!r}")
        folder = jobs.new_folder(root, name)
        data = _dataset(folder, config, policy)
        run = jobs.start(folder, config_to_toml(config), data, policy)
    except InputError as exc:
        if folder is not None and not (folder / jobs.JOB_FILE).exists():
            _remove_new(folder)
        return _form(None, error=str(exc), name=name, status=400)
    return redirect(url_for("runs.show", name=run.name), 303)


@bp.get("/runs/<name>")
def show(name: str):
    run = _run(name)
    return render_template("run.html", run=run, status=run.status, progress=run.progress(), kpis=run.kpis(),
                           log=run.log_tail(), results=_results(run), KPIS=KPIS)


@bp.get("/api/runs/<name>")
def api_run(name: str):
    run = _run(name)
    return {"name": run.name, "status": run.status, "progress": run.progress(), "kpis": run.kpis(),
            "log_tail": run.log_tail(4)}


@bp.get("/runs/<name>/results/<path:filename>")
def result_file(name: str, filename: str):
    return send_from_directory(_run(name).state.results, filename, as_attachment=filename.endswith(".csv"))


@bp.get("/runs/compare")
def compare():
    a, b = _run(request.args.get("a", "")), _run(request.args.get("b", ""))
    return render_template("compare.html", a=a, b=b, ka=a.kpis() or {}, kb=b.kpis() or {}, KPIS=KPIS,
                           charts=_compare_charts(a, b))


@bp.get("/runs/compare.csv")
def compare_csv():
    a, b = _run(request.args.get("a", "")), _run(request.args.get("b", ""))
    ka, kb = a.kpis() or {}, b.kpis() or {}
    return csv_response(f"compare-{a.name}-{b.name}.csv", ["kpi", "unit", a.name, b.name],
                        ([key, unit, ka.get(key), kb.get(key)] for key, _, unit in KPIS))


def _form(config: CommunityConfig | None, status: int = 200, error: str | None = None, name: str = ""):
    fields = form_fields(config or default_config())
    if config is None:  # re-shown after an error: keep what was typed
        fields = [f.__class__(**{**f.__dict__, "value": request.form.get(f.key, f.value)}) for f in fields]
    sections: dict[str, list] = {}
    for f in fields:
        sections.setdefault(f.section, []).append(f)
    return render_template("run_form.html", sections=sections, error=error, name=name or request.form.get("name", ""),
                           enabled=runs_dir() is not None, policy=request.form.get("meter_policy", "strict")), status


def _check_size(config: CommunityConfig) -> None:
    limits = current_app.config
    if config.community.homes > limits["RUNS_MAX_HOMES"] or config.community.days > limits["RUNS_MAX_DAYS"]:
        raise InputError(f"this server runs at most {limits['RUNS_MAX_HOMES']} homes and {limits['RUNS_MAX_DAYS']} days "
                         "from the browser; run bigger communities with `gridledger simulate`")


def _dataset(folder: Path, config: CommunityConfig, policy: str) -> Path | None:
    """The uploaded dataset saved in the run's folder and judged by the CLI's loader (the
    same row and column errors), or None without one (a synthetic community)."""
    upload = request.files.get("data")
    if upload is None or not upload.filename:
        return None
    filename = secure_filename(upload.filename)
    if not filename.endswith((".csv", ".parquet")):
        raise InputError(f"{upload.filename}: a dataset is a .csv or .parquet file")
    path = folder / filename
    upload.save(path)
    from node.data.dataset import load_dataset_with_report

    try:
        load_dataset_with_report(path, config, policy)
    except InputError as exc:
        raise InputError(str(exc).replace(str(path), upload.filename)) from None
    return path


def _remove_new(folder: Path) -> None:
    """Removes a run folder this request made and that never started: only its files."""
    for entry in folder.iterdir():
        if entry.is_file():
            entry.unlink()
    folder.rmdir()


def _config_of(run: jobs.Run) -> CommunityConfig:
    try:
        return load_config(run.config_path)
    except ConfigError as exc:
        abort(400, str(exc))


def _free_name(base: str) -> str:
    root = runs_dir()
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in base.lower()).strip("-_")[:40] or "run"
    taken = {r.name for r in jobs.runs(root)} if root else set()
    return next(f"{stem}-{i}" for i in range(2, 10**6) if f"{stem}-{i}" not in taken) if stem in taken else stem


def _results(run: jobs.Run) -> list[str]:
    folder = run.state.results
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def _compare_charts(a: jobs.Run, b: jobs.Run) -> dict:
    """Both runs' grid import and P2P price by step of their runs, side by side."""
    series = {}
    for run in (a, b):
        if run.state.index.exists():
            index = Index(run.state.index)
            try:
                series[run.name] = time_series(index, index.meta())
            finally:
                index.close()
    if len(series) < 2:
        return {}
    steps = max(len(s["interval"]) for s in series.values())
    x = list(range(steps))

    def overlay(key: str, scale: float, title: str, unit: str):
        colors = ("#2563a8", "#e8590c")
        return line_chart(x, [Series(name, [v / scale for v in s[key]] + [None] * (steps - len(s[key])), color, "step")
                              for (name, s), color in zip(series.items(), colors)],
                          title=title, y_label=unit, x_label="step of the run", hover_format=lambda v: f"{v:.3f} {unit}")

    return {"import": overlay("grid_import_wh", 1000, "Grid import per interval", "kWh"),
            "p2p": overlay("p2p_price_units_per_kwh", 1_000_000, "P2P price", "per kWh"),
            "traded": overlay("p2p_wh", 1000, "P2P traded per interval", "kWh")}

"""Command line: ``spikegrad train | evaluate | config | sweep | sweep-table | figure | report | export |
import | data``, thin over the Python API; ``spikegrad --plugin MODULE …`` first imports a
module of the user's that registers parts (:mod:`spikegrad.plugins`).

Flags override a ``--config`` TOML file, which overrides the defaults; ``--set
section.key=value`` reaches any config field.  User mistakes print one line
(``spikegrad: error: …``) and exit with code 2, without a traceback.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from ._format import pm as _pm
from .config import Config, load_config, merge_nested, nest, normalise_timing, parse_value, read_toml
from .errors import SpikegradError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Spiking neural networks trained with surrogate gradients.")
err_console = Console(stderr=True)


@app.callback()
def _load_plugins(
    ctx: typer.Context,
    plugin: list[str] = typer.Option([], "--plugin", metavar="MODULE",
                                     help="A module or .py file of your own that registers parts (rules, "
                                          "surrogates, losses, …) on import; repeatable, before the command. "
                                          "Also: SPIKEGRAD_PLUGINS, entry points 'spikegrad.plugins'."),
) -> None:
    from .plugins import load_plugins

    load_plugins(plugin)
    _help_lists_registered_names(ctx.command)


def _registries() -> dict[str, tuple[str, Any]]:
    """`spikegrad train` option → (what it chooses, the registry it chooses from)."""
    from .data import DATASETS
    from .dynamics import NEURON_MODELS
    from .losses import LOSSES
    from .optim import OPTIMIZERS, SCHEDULES
    from .readouts import READOUTS
    from .rules import RULES
    from .surrogates import SURROGATES

    return {"dataset": ("Data set", DATASETS), "neuron": ("Neuron model", NEURON_MODELS),
            "surrogate": ("Surrogate derivative", SURROGATES), "rule": ("Learning rule", RULES),
            "loss": ("Loss", LOSSES), "optimizer": ("Optimiser", OPTIMIZERS),
            "schedule": ("Learning rate per epoch", SCHEDULES), "readout": ("Readout over time", READOUTS)}


# what a choice's help adds after the registered names (options of the built-in parts)
_HELP_TAILS = {
    "neuron": " lif: eq. 4.1; alif: adaptive threshold (--set model.tau_adapt_ms=…, model.beta_adapt=…); "
              "cuba: the peers' step ordering, for NIR export (--set model.threshold=…, model.decays=euler).",
    "rule": " fa: feedback alignment; dfa: direct FA; dcll: local errors; rtrl: forward-mode, exact.",
}


def _help_lists_registered_names(group) -> None:
    """Write the registered names (plug-ins' included) into the help of `train`'s choices,
    at run time, before a command's help is printed."""
    train_command = getattr(group, "commands", {}).get("train")
    if train_command is None:
        return
    choices = _registries()
    for param in train_command.params:
        if param.name in choices:
            what, registry = choices[param.name]
            param.help = f"{what}: {', '.join(registry.names())}.{_HELP_TAILS.get(param.name, '')}"


class _Interrupted(Exception):
    """Ctrl-C (SIGINT) in a command that can say how to continue."""


def _resume_hint(run: Path) -> str:
    from .training import CHECKPOINT

    if (Path(run) / CHECKPOINT).is_file():
        return f"the run folder {run} keeps every finished epoch; `spikegrad train --resume {run}` continues it"
    return f"no epoch had finished; nothing to resume in {run}"


def _usage_error_types() -> tuple[type[Exception], ...]:
    """Usage-error base classes: typer ≥ 0.22 vendors click, older typer uses click itself."""
    types = [getattr(typer.exceptions, "TyperException", None)]
    try:
        import click

        types.append(click.ClickException)
    except ImportError:  # pragma: no cover
        pass
    return tuple(t for t in types if t is not None)


_USAGE_ERRORS = _usage_error_types()


def _hidden(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SpikegradError(f"--hidden takes comma-separated layer sizes like 128 or 128,64 (0 for none), got {text!r}") from None
    return sizes


def _choice(flag: str, value: str, mapping: dict[str, Any]) -> Any:
    if value not in mapping:
        raise SpikegradError(f"{flag} must be one of {', '.join(mapping)}, got {value!r}")
    return mapping[value]


def resolve_config(config: Optional[Path], flags: dict[str, Any], sets: list[str]) -> Config:
    """Defaults ← data set defaults ← config file ← ``--set`` pairs ← explicit flags."""
    raw: dict[str, Any] = {}
    if config is not None:
        load_config(config)  # errors name the file
        raw = normalise_timing(read_toml(config))  # its data.n_steps / model.dt_ms: its own data set's
    overrides: dict[str, Any] = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SpikegradError(f"--set takes KEY=VALUE (e.g. model.tau_mem_ms=20), got {item!r}")
        key, value = key.strip(), value.strip()
        # text fields take the text as it is (`--set model.surrogate=true` names a surrogate)
        overrides[key] = value if isinstance(Config().get(key), str) else parse_value(value)
    overrides.update({k: v for k, v in flags.items() if v is not None})
    if not overrides:
        return Config.from_dict(raw, str(config) if config else "defaults")
    return Config.from_dict(merge_nested(raw, nest(overrides)), "command line")


@app.command()
def train(
    config: Optional[Path] = typer.Option(None, "--config", help="TOML config file (flags override it)."),
    dataset: Optional[str] = typer.Option(None, help="Data set (the registered names)."),
    data_dir: Optional[Path] = typer.Option(None, help="Folder with the data set's files (official layout)."),
    hidden: Optional[str] = typer.Option(None, help="Hidden layer sizes, comma-separated; 0 for none."),
    recurrent: Optional[bool] = typer.Option(None, "--recurrent/--feedforward", help="Recurrent hidden layers."),
    neuron: Optional[str] = typer.Option(None, help="Neuron model (the registered names)."),
    surrogate: Optional[str] = typer.Option(None, help="Surrogate derivative (the registered names)."),
    beta: Optional[float] = typer.Option(None, help="Surrogate slope β."),
    lr: Optional[float] = typer.Option(None, help="Learning rate."),
    rule: Optional[str] = typer.Option(None, help="Learning rule (the registered names)."),
    loss: Optional[str] = typer.Option(None, help="Loss (the registered names)."),
    optimizer: Optional[str] = typer.Option(None, help="Optimiser (the registered names)."),
    schedule: Optional[str] = typer.Option(None, help="Learning rate per epoch (the registered names)."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs."),
    batch_size: Optional[int] = typer.Option(None, help="Batch size."),
    readout: Optional[str] = typer.Option(None, help="Readout over time (the registered names)."),
    reset: Optional[str] = typer.Option(None, help="zero (eq. 4.1) or subtract (tutorial eq. 7)."),
    reset_grad: Optional[str] = typer.Option(None, help="detach (default) or diff: gradient through the reset."),
    recurrent_grad: Optional[str] = typer.Option(None, help="prop (default) or ctl: detach S inside V·S."),
    input_gain: Optional[bool] = typer.Option(None, "--input-gain/--no-input-gain", help="(1 − β) input factor."),
    dt: Optional[float] = typer.Option(None, help="Time step in ms."),
    tau_mem: Optional[float] = typer.Option(None, help="Membrane time constant in ms."),
    tau_syn: Optional[float] = typer.Option(None, help="Synaptic time constant in ms."),
    tau_out: Optional[float] = typer.Option(None, help="Readout time constant in ms."),
    seed: Optional[int] = typer.Option(None, help="Seed of weight init and shuffling."),
    data_seed: Optional[int] = typer.Option(None, help="Seed of the data set."),
    threads: Optional[int] = typer.Option(None, help="Torch CPU threads (0: torch's default)."),
    device: Optional[str] = typer.Option(None, help="auto (cuda if available), cpu, cuda, cuda:N."),
    set_: list[str] = typer.Option([], "--set", help="Any config field: section.key=value (repeatable)."),
    allow_dropped_events: bool = typer.Option(False, "--allow-dropped-events",
                                              help="Train even if more than data.max_dropped of a split's events "
                                                   "fall after the simulated window."),
    out: Optional[Path] = typer.Option(None, help="Run folder (default runs/DATASET-TIMESTAMP)."),
    resume: Optional[Path] = typer.Option(None, "--resume", metavar="RUN_DIR",
                                          help="Continue a killed run from its last checkpoint (its own config)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train a network; `spikegrad train` alone runs the paper's Randman task."""
    if resume is not None:
        given = [name for name, value in locals().items()
                 if name not in ("resume", "quiet") and value not in (None, [], False)]
        if given:
            raise SpikegradError(f"--resume continues a run with its own config.toml; drop --{given[0].rstrip('_').replace('_', '-')}")
        from .training import resume as resume_training

        try:
            metrics = resume_training(resume, progress=not quiet)
        except KeyboardInterrupt:
            raise _Interrupted(_resume_hint(resume)) from None
        _report_run(metrics, resume)
        return
    flags = {
        "data.name": dataset, "data.dir": str(data_dir) if data_dir is not None else None,
        "model.hidden": _hidden(hidden) if hidden is not None else None,
        "model.recurrent": recurrent, "model.neuron": neuron, "model.surrogate": surrogate, "model.beta": beta,
        "train.lr": lr, "train.rule": rule, "train.loss": loss, "train.optimizer": optimizer,
        "train.schedule": schedule, "train.epochs": epochs, "train.batch_size": batch_size,
        "model.readout": readout, "model.reset": reset,
        "model.detach_reset": None if reset_grad is None else _choice("--reset-grad", reset_grad, {"detach": True, "diff": False}),
        "model.recurrent_grad": recurrent_grad, "model.input_gain": input_gain,
        "model.dt_ms": dt, "model.tau_mem_ms": tau_mem, "model.tau_syn_ms": tau_syn,
        "model.tau_out_ms": tau_out, "train.seed": seed, "data.seed": data_seed, "train.threads": threads,
        "train.device": device, "data.max_dropped": 1.0 if allow_dropped_events else None,
    }
    cfg = resolve_config(config, flags, set_)
    from .training import prepare_run_dir, train as run_training

    if out is None:
        out = Path("runs") / f"{cfg.data.name}-{_dt.datetime.now():%Y%m%d-%H%M%S}"
    prepare_run_dir(out)  # fail before any work if the folder is taken
    try:
        metrics = run_training(cfg, out, progress=not quiet)
    except KeyboardInterrupt:
        raise _Interrupted(_resume_hint(out)) from None
    _report_run(metrics, out)


def _report_run(metrics: dict, out: Path) -> None:
    _print_metrics(metrics, f"run folder: {out}")
    if metrics["diverged"]:
        err_console.print("spikegrad: warning: the loss became non-finite; training stopped early "
                          "(metrics are those of the best epoch before it)")


@app.command()
def evaluate(run_dir: Path = typer.Argument(..., help="A run folder written by `spikegrad train`.")) -> None:
    """Re-evaluate a run's saved best-validation weights on its validation and test data."""
    from .training import evaluate_run

    _print_metrics(evaluate_run(run_dir), f"run folder: {run_dir}")


@app.command()
def activity(
    run_dir: Path = typer.Argument(..., help="A run folder written by `spikegrad train`."),
    split: str = typer.Option("test", help="train, val or test."),
    sample: int = typer.Option(0, help="Index of the sample in that split."),
    out: Optional[Path] = typer.Option(None, help="PNG to write (default RUN_DIR/activity-SPLIT-SAMPLE.png)."),
) -> None:
    """Plot input raster, hidden rasters and readout traces of a trained network on one sample."""
    from .figures import plot_activity

    path = plot_activity(run_dir, split, sample, out)
    typer.echo(f"wrote {path}")


@app.command("config")
def show_config(
    config: Optional[Path] = typer.Option(None, "--config", help="TOML config file to resolve."),
    set_: list[str] = typer.Option([], "--set", help="section.key=value (repeatable)."),
) -> None:
    """Print the resolved configuration as TOML (the schema `train --config` reads)."""
    typer.echo(resolve_config(config, {}, set_).to_toml())


@app.command()
def sweep(
    config: Path = typer.Argument(..., help="Sweep file: the train TOML schema plus a [sweep] table."),
    out: Path = typer.Option(..., "--out", help="Sweep folder (trials/, study.db, tables)."),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL (default sqlite:///OUT/study.db); "
                                                     "postgresql://… shares the sweep between machines."),
    workers: int = typer.Option(1, help="Local worker processes."),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed sweep, or join one from another machine."),
    quick: bool = typer.Option(False, "--quick", help="Apply the [sweep] quick overrides (e.g. fewer epochs)."),
    heartbeat: int = typer.Option(60, help="Seconds between heartbeats; a trial silent for twice that is re-run."),
) -> None:
    """Run a grid search: every grid point × seed trained once, resumable, on shared storage."""
    from .sweeps import load_sweep, run_sweep

    spec = load_sweep(config, quick=quick)
    counts = run_sweep(spec, out, storage, workers, resume, heartbeat, say=typer.echo)
    typer.echo(f"sweep {spec.name!r}: {counts['complete']}/{counts['points']} points done "
               f"({counts['diverged']} diverged), {counts['failed']} failed, {counts['pending']} pending; "
               f"tables: spikegrad sweep-table {out}")
    if counts["points"] and not counts["complete"] and not counts["pending"]:
        raise SpikegradError(f"no trial of sweep {spec.name!r} succeeded ({counts['failed']} of {counts['points']} "
                             f"points failed; their errors are printed above); `--resume` runs them again")
    if counts["failed"]:
        err_console.print("spikegrad: warning: some trials failed; `--resume` runs them again")


@app.command("sweep-worker", hidden=True)
def sweep_worker(
    sweep_dir: Path = typer.Argument(...),
    storage: Optional[str] = typer.Option(None),
    study: Optional[str] = typer.Option(None),
    heartbeat: int = typer.Option(60),
) -> None:
    """One worker of `spikegrad sweep --workers N` (internal)."""
    from .sweeps import work

    work(sweep_dir, storage, study, heartbeat, say=typer.echo)


@app.command("sweep-table")
def sweep_table(
    sweep_dir: Path = typer.Argument(..., help="A sweep folder written by `spikegrad sweep`."),
    group: Optional[str] = typer.Option(None, help="Grid keys to group by, comma-separated (e.g. model.surrogate)."),
    top_k: int = typer.Option(5, help="Configurations per group averaged for the test metric (accuracy by default)."),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL (default sqlite:///SWEEP_DIR/study.db)."),
    study: Optional[str] = typer.Option(None, help="Sweep name, where the storage holds several."),
) -> None:
    """Rank configurations by the mean validation metric of their loss (accuracy by default);
    mean ± sd of its test value over the top k per group."""
    from .sweeps import sweep_table as build

    keys = [k.strip() for k in (group or "").split(",") if k.strip()]
    result = build(sweep_dir, keys, top_k, storage, study)
    console = Console()
    params = list(result["spec"].grid)
    metric = result["ranked"][0]["metric"] if result["ranked"] else "accuracy"
    ranked = Table(title=f"sweep {result['spec'].name}: configurations by mean validation {metric}")
    for col in ("rank", *params, "seeds", "val", "test", "diverged"):
        ranked.add_column(col, justify="right")
    for c in result["ranked"]:
        ranked.add_row(str(c["rank"]), *(json.dumps(c["params"][p]) for p in params), str(c["n_seeds"]),
                       _pm(c["val_mean"], c["val_sd"]), _pm(c["test_mean"], c["test_sd"]), str(c["diverged"]))
    console.print(ranked)
    top = Table(title=f"top {top_k} per group: test {metric} (mean ± sd over configurations)")
    for col in (*keys, "k", "test", "val", "best configuration"):
        top.add_column(col, justify="right")
    for s in result["summary"]:
        top.add_row(*(json.dumps(s["group"][k]) for k in keys), f"{s['k']}/{s['configs']}",
                    _pm(s["test_mean"], s["test_sd"]), _pm(s["val_mean"], s["val_sd"]),
                    " ".join(f"{k}={json.dumps(v)}" for k, v in s["best_params"].items()))
    console.print(top)
    counts = result["counts"]
    typer.echo(f"{counts['complete']}/{counts['points']} points done; wrote "
               + ", ".join(str(p) for p in result["paths"]))


@app.command()
def figure(
    name: str = typer.Argument(..., help="fig2 (true vs surrogate gradient), fig3 (surrogate shape), fig5 (surrogate "
                                          "scale), fig6 (FF/RC × Max/Sum per data set), fig8 (spike counts with/without "
                                          "regularisation), fig9 (critical spike count), landscape (loss landscape)."),
    sweep_dirs: list[Path] = typer.Argument(..., metavar="SWEEP_DIR...",
                                            help="Sweep folder(s) written by `spikegrad sweep`; rows are pooled. "
                                                 "landscape also takes one run folder."),
    out: Optional[Path] = typer.Option(None, help="Folder for NAME.png and NAME.csv (default: the first SWEEP_DIR)."),
    top_k: Optional[int] = typer.Option(None, help="Best configurations averaged per bar (fig3: 5, fig5 and fig6: 10)."),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL (default sqlite:///SWEEP_DIR/study.db)."),
    study: Optional[str] = typer.Option(None, help="Sweep name, where the storage holds several."),
) -> None:
    """Draw one of the paper's sweep figures: NAME.png plus NAME.csv with the numbers plotted."""
    from .paper_figures import check_figure_name, make_figure

    check_figure_name(name)  # before any storage is opened
    result = make_figure(name, sweep_dirs, out, top_k, storage, study)
    typer.echo(f"{name}: {result['trials']} trials; wrote {result['png']}, {result['csv']}")


@app.command()
def alignment(
    run_dirs: list[Path] = typer.Argument(..., metavar="RUN_DIR...",
                                          help="Run folders trained with --set train.alignment=true."),
    out: Path = typer.Option(Path("alignment.png"), help="PNG to write (a CSV of the numbers beside it)."),
) -> None:
    """Plot how each run's updates aligned with BPTT's gradient, and its weights with their feedback matrices."""
    from .figures import alignment_figure

    result = alignment_figure(run_dirs, out)
    typer.echo(f"alignment: {len(run_dirs)} run(s); wrote {result['png']}, {result['csv']}")


@app.command()
def report(
    sweep_dir: Path = typer.Argument(..., help="A sweep folder written by `spikegrad sweep`."),
    out: Optional[Path] = typer.Option(None, help="HTML file to write (default SWEEP_DIR/report.html)."),
    group: Optional[str] = typer.Option(None, help="Grid keys to group the top-k table by, comma-separated."),
    top_k: int = typer.Option(5, help="Configurations per group averaged in the top-k table."),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL (default sqlite:///SWEEP_DIR/study.db)."),
    study: Optional[str] = typer.Option(None, help="Sweep name, where the storage holds several."),
) -> None:
    """One self-contained HTML page: sweep config, trial counts, top-k table and every figure that applies."""
    from .report import write_report

    keys = [k.strip() for k in (group or "").split(",") if k.strip()]
    result = write_report(sweep_dir, out, keys, top_k, storage, study)
    made = ", ".join(result["figures"]) or "none"
    typer.echo(f"report: figures {made}; {len(result['skipped'])} not applicable; wrote {result['path']}")


@app.command("export")
def export(
    run_dir: Path = typer.Argument(..., help="A run folder written by `spikegrad train`."),
    nir_file: Path = typer.Option(..., "--nir", help="The NIR file to write (HDF5)."),
    target: str = typer.Option("generic", help="generic (= norse: the run's dt) or snntorch (dt 1e-4 s, "
                                               "its importer's conventions)."),
    readout: Optional[bool] = typer.Option(None, "--readout/--no-readout",
                                           help="Write the leaky readout as a CubaLI (default: generic only; "
                                                "snnTorch and Norse import no CubaLI)."),
    check_samples: int = typer.Option(1000, help="Test samples on which the file's dynamics are compared "
                                                 "with the trained network."),
) -> None:
    """Write a run's best weights as a NIR graph, and say what the file's dynamics (the peers')
    change on the run's test data."""
    from .interop.nir import export_run

    rep = export_run(run_dir, nir_file, target, readout, check_samples, progress=True)
    fractions = ", ".join(f"{f:.2%}" for f in rep["differing_fraction"])
    typer.echo(f"wrote {rep['file']} (target {rep['target']}, dt {rep['dt']:g} s)")
    line = (f"on {rep['samples']} test samples the file's dynamics and the trained network differ in "
            f"{fractions} of their spikes per layer; same prediction {rep['same_prediction']:.2%}")
    if "accuracy_model" in rep:
        line += f"; accuracy {rep['accuracy_model']:.4f} (trained) vs {rep['accuracy_graph']:.4f} (file)"
    if rep["neuron_model"] != "cuba":
        err_console.print(f"spikegrad: warning: model.neuron {rep['neuron_model']!r} steps in eq. 4.1's ordering, "
                          f"which NIR and the peers do not; {line}. Train with --neuron cuba for an exact file.",
                          soft_wrap=True)
    else:
        typer.echo(line)


@app.command("import")
def import_(
    nir_file: Path = typer.Argument(..., help="A NIR file (Input → Linear → CubaLIF … → CubaLI or CubaLIF → Output)."),
    out: Path = typer.Option(..., help="New folder for config.toml and model.safetensors."),
    data: str = typer.Option(..., "--dataset", help="The data set the network reads (its inputs and classes "
                                                    "must fit the graph)."),
    dt_ms: Optional[float] = typer.Option(None, help="The step the graph was written for (default: its "
                                                     "spikegrad.dt metadata; snnTorch writes for 0.1 ms)."),
    step_ms: Optional[float] = typer.Option(None, help="Run at this step, every τ stretched alike (the same "
                                                       "decays per step): e.g. a snnTorch graph on data "
                                                       "binned at 1 ms takes --dt-ms 0.1 --step-ms 1."),
) -> None:
    """Turn a NIR graph into a folder spikegrad evaluates, trains from (`spikegrad train --config
    OUT/config.toml`) and exports again."""
    from .interop.nir import import_graph

    folder = import_graph(nir_file, out, data, None if dt_ms is None else dt_ms * 1e-3,
                          None if step_ms is None else step_ms * 1e-3)
    typer.echo(f"wrote {folder}/config.toml and model.safetensors; evaluate with `spikegrad evaluate {folder}`, "
               f"train with `spikegrad train --config {folder}/config.toml --out RUN`")


data_app = typer.Typer(no_args_is_help=True, help="Download and inspect data sets.")
app.add_typer(data_app, name="data")


@data_app.command("download")
def data_download(
    name: str = typer.Argument(..., help="randman, mnist, fashion-mnist, shd, ssc, rawhd, rawsc, clicks."),
    data_dir: Optional[Path] = typer.Option(None, help="Target folder (default $SPIKEGRAD_DATA/NAME)."),
    mirror: Optional[str] = typer.Option(None, help="Base URL replacing the official ones (default $SPIKEGRAD_MIRROR)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Download, verify (md5/sha256) and unpack a data set's official files."""
    from .data.download import download

    download(name, str(data_dir) if data_dir is not None else "", mirror=mirror, progress=not quiet,
             say=typer.echo)


@data_app.command("info")
def data_info(
    name: str = typer.Argument(..., help="A data set name (see `spikegrad data download --help`)."),
    data_dir: Optional[Path] = typer.Option(None, help="Folder with the data set's files (official layout)."),
    plot: Optional[Path] = typer.Option(None, help="Write a raster/heatmap of one sample to this PNG file."),
    sample: int = typer.Option(0, help="Index of the plotted sample."),
    split: str = typer.Option("train", help="Split of the plotted sample: train, val or test."),
    set_: list[str] = typer.Option([], "--set", help="Any config field: section.key=value (repeatable)."),
) -> None:
    """Print split sizes, classes, inputs and events per sample; optionally plot one sample."""
    from .data import load_dataset
    from .data.inspect import SPLITS, format_summary, plot_sample, summarize

    if split not in SPLITS:
        raise SpikegradError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    cfg = resolve_config(None, {"data.name": name, "data.dir": str(data_dir) if data_dir is not None else None},
                         set_)
    splits = load_dataset(cfg)
    for line in format_summary(name, summarize(splits)):
        typer.echo(line)
    if plot is not None:
        plot_sample(getattr(splits, split), sample, plot, f"{name}, {split} sample {sample}")
        typer.echo(f"plot: {plot}")


def _print_metrics(metrics: dict, caption: str) -> None:
    table = Table(title="spikegrad", caption=caption)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        text = f"{value:.4f}" if isinstance(value, float) else json.dumps(value) if isinstance(value, (list, dict)) else str(value)
        table.add_row(key, text)
    Console().print(table)


def _fail(message: object) -> None:
    """One line on stderr; rich would wrap long lines, so plain print."""
    print(f"spikegrad: error: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning user errors into one line and exit code 2."""
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="spikegrad", standalone_mode=False)
    except _USAGE_ERRORS as err:
        if type(err).__name__ == "NoArgsIsHelpError":  # help was printed: not an error
            return 0
        _fail(err.format_message() if hasattr(err, "format_message") else err)
        return getattr(err, "exit_code", 2) or 2
    except SpikegradError as err:
        _fail(err)
        return 2
    except OSError as err:
        _fail(err)
        return 1
    except _Interrupted as err:
        print(f"spikegrad: interrupted; {err}", file=sys.stderr)
        return 130
    except (KeyboardInterrupt, typer.Abort):
        print("spikegrad: interrupted", file=sys.stderr)
        return 130
    if rv == 130:  # typer turns Ctrl-C into Exit(130) without a word
        print("spikegrad: interrupted", file=sys.stderr)
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

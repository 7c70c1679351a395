"""The training loop: epochs of a learning rule's steps, validation every epoch, the best
epoch by the loss's selection metric, checkpoint/resume.

What is learned and how is chosen elsewhere, by name in the config or as objects: the
model (``model.arch``, :mod:`spikegrad.models`), the loss and its metrics (``train.loss``,
:mod:`spikegrad.losses`), the learning rule (``train.rule``, :mod:`spikegrad.rules`), the
optimiser, schedule and clipping (:mod:`spikegrad.optim`).  The defaults are the paper's:
eq. 4.1 network, cross-entropy with accuracy, BPTT, Adam at a constant learning rate.

A run folder holds ``config.toml`` (resolved), ``metrics.jsonl`` (one line per epoch),
``metrics.json`` (final), ``model.safetensors`` (best-validation weights),
``last.safetensors`` (last epoch), ``plugins.json`` (only when plugins were loaded:
:mod:`spikegrad.plugins`; reading the run back loads them) and ``checkpoint.pt``
(rewritten atomically at the end of every epoch: weights, optimiser, schedule and rule
state, shuffling and torch RNG states, history, best-validation state).  Same config and
thread count on CPU → identical metrics (wall time aside), also when a killed run is
continued with :func:`resume` (or ``train(..., resume=True)``).
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .allocator import tune_allocator
from .config import Config, load_config
from .data import DataSplits, DenseData, EventData, load_dataset
from .errors import SpikegradError
from .events import EventBatch
from .init import fluctuation_init_
from .losses import Loss, make_loss
from .models import build_model, check_model_size, estimated_bytes  # noqa: F401  (re-exported)
from .network import SNN
from .optim import STATE_TENSORS, make_optimizer, make_schedule
from .plugins import RUN_FILE as PLUGINS_FILE, load_recorded as load_recorded_plugins, loaded as loaded_plugins
from .rules import Rule, make_rule

EVAL_BATCH = 1000

INIT_BATCH = 1000


def init_model(cfg: Config, splits: DataSplits, fresh: bool = True) -> torch.nn.Module:
    """The network a run starts from, in the one order training, evaluation and the figures
    share: seed torch's RNG with ``train.seed``, build (``model.arch``; weights drawn from it), move to the
    device, then — ``fresh`` — ``train.init_from``'s weights or the fluctuation-driven init.
    ``fresh=False`` stops after the build (a checkpoint's or a run's weights follow).
    Leaves torch's global RNG where the build left it (training continues from there)."""
    torch.manual_seed(cfg.train.seed)
    device = cfg.torch_device()
    model = build_model(cfg, splits.n_inputs, splits.n_classes).to(device)
    if fresh and cfg.train.init_from:
        load_weights(model, cfg.train.init_from, device)
    elif fresh and cfg.model.init == "fluctuation":
        if not isinstance(model, SNN):
            raise SpikegradError(f"model.init 'fluctuation' initialises eq. 4.1 layers; model.arch "
                                 f"{cfg.model.arch!r} builds a {type(model).__name__}")
        initialize_from_data(model, splits.train, cfg)
    return model


def initialize_from_data(model: SNN, data: EventData | DenseData, cfg: Config) -> list[dict]:
    """Fluctuation-driven init (spikegrad.init) with rates measured on ≤ 1000 training samples.

    The samples are drawn with their own generator (seeded by train.seed), so the shuffling
    of the training batches is the same as with the uniform init.
    """
    rng = np.random.default_rng([cfg.train.seed, 0x1417])
    idx = np.sort(rng.permutation(len(data))[:INIT_BATCH])
    x = data.inputs(idx, cfg.data.n_steps, cfg.model.dt_ms * 1e-3).to(cfg.torch_device())
    gen = torch.Generator().manual_seed(cfg.train.seed)
    return fluctuation_init_(model, x, cfg.model.init_sigma_u, generator=gen)


def iterate_batches(data: EventData | DenseData, cfg: Config, batch_size: int,
                    rng: np.random.Generator | None = None
                    ) -> Iterator[tuple[torch.Tensor | EventBatch, torch.Tensor]]:
    """Input batches [batch, n_steps, inputs] and labels; shuffled when ``rng`` is given.

    Spiking data come as an :class:`EventBatch` (binned spike counts, nonzeros only: the
    event-driven input projection reads them without a dense raster), analog data as a
    dense tensor.  The model takes either.
    """
    order = rng.permutation(len(data)) if rng is not None else np.arange(len(data))
    dt = cfg.model.dt_ms * 1e-3
    device = cfg.torch_device()
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        x = data.batch(idx, cfg.data.n_steps, dt)[0] if isinstance(data, EventData) \
            else data.inputs(idx, cfg.data.n_steps, dt)
        yield x.to(device), torch.from_numpy(data.labels[idx]).to(device)


def loss_and_record(model, x, y: torch.Tensor, cfg: Config, loss: Loss | None = None):
    """The objective of one batch: the loss (``loss``, else the one ``train.loss`` names) of
    the model's output plus the activity regulariser on the hidden spikes; returns
    (objective, output, recording)."""
    output, rec = model.run(x)
    value = (loss if loss is not None else make_loss(cfg))(output, y)
    reg = cfg.regularizer_obj()
    spikes = getattr(rec, "spikes", None)
    if reg.active and spikes:
        value = value + reg(spikes)
    return value, output, rec


@torch.no_grad()
def evaluate(model, data: EventData | DenseData, cfg: Config, loss: Loss | None = None) -> dict:
    """The objective (key ``loss``), the loss's metrics (e.g. ``accuracy``; means per
    sample) and hidden spikes per sample (total and per layer) on one split."""
    loss = loss if loss is not None else make_loss(cfg)
    n = len(data)
    if n == 0:
        return {"loss": float("nan"), **{m: float("nan") for m in loss.metrics}, "hidden_spikes_per_sample": 0.0,
                "hidden_spikes_per_layer": []}
    loss_sum, sums, layer_spikes = 0.0, dict.fromkeys(loss.metrics, 0), None
    for x, y in iterate_batches(data, cfg, EVAL_BATCH):
        value, output, rec = loss_and_record(model, x, y, cfg, loss)
        loss_sum += float(value.detach()) * len(y)
        for name, v in loss.batch_metrics(output, y).items():
            sums[name] += v
        spikes = getattr(rec, "spikes", None) or []
        layer_spikes = layer_spikes or [0.0] * len(spikes)
        for k, s in enumerate(spikes):
            layer_spikes[k] += float(s.sum(dtype=torch.float64))
    per_layer = [c / n for c in layer_spikes]
    return {"loss": loss_sum / n, **{m: sums[m] / n for m in loss.metrics},
            "hidden_spikes_per_sample": float(sum(per_layer)), "hidden_spikes_per_layer": per_layer}


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` that replaces it on success (a kill leaves the old file)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _atomic_write(path: Path, text: str) -> None:
    with _replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _finite_or_null(value):
    """NaN and ±inf (a diverged run's losses) as None, so that the files are valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_null(v) for v in value]
    return value


def _json(value, **kwargs) -> str:
    return json.dumps(_finite_or_null(value), allow_nan=False, **kwargs)


def _default_file_mode() -> int:
    """0o666 less the process's umask: what an ordinary new file gets."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def save_weights(model: SNN, path: Path) -> None:
    """The model's state dict as a .safetensors file, written whole or not at all."""
    with _replacing(path) as tmp:
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(tmp))
        os.chmod(tmp, _default_file_mode())  # safetensors writes 0600; the rest of the folder is ordinary


CHECKPOINT = "checkpoint.pt"


def _save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically, flushed to disk before it replaces the old one."""
    with _replacing(path) as tmp, tmp.open("wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())


def _first_line(err: BaseException) -> str:
    """An exception's first line, or its type when it has no message."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _load_checkpoint(path: Path) -> dict:
    if path.stat().st_size == 0:
        raise SpikegradError(f"cannot resume from {path}: the file is empty (0 bytes)")
    try:
        # tensors, primitive containers and one JSON string: the safe loader suffices
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt files
        raise SpikegradError(f"cannot read checkpoint {path}: {_first_line(err)}") from None


_CHECKPOINT_KEYS = ("meta", "model", "optimizer", "torch_rng", "best_state")
_META_KEYS = {"history": list, "best_val": (int, float, type(None)), "best_epoch": int, "numpy_rng": dict,
              "seconds": (int, float)}


def _state_mismatch(state, model) -> str | None:
    """None if ``state`` has exactly the model's tensors with the model's shapes, else what differs."""
    if not isinstance(state, dict):
        return f"a {type(state).__name__}, not a dict of tensors"
    want = model.state_dict()
    missing, extra = sorted(set(want) - set(state)), sorted(set(state) - set(want))
    if missing or extra:
        return f"not the model's tensors (missing {missing or 'none'}, unexpected {extra or 'none'})"
    for name, tensor in want.items():
        got = state[name]
        if not isinstance(got, torch.Tensor) or got.shape != tensor.shape:
            shape = list(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return f"tensor {name!r} has shape {shape}, the model needs {list(tensor.shape)}"
    return None


def _check_state(path: Path, what: str, state, model) -> None:
    problem = _state_mismatch(state, model)
    if problem is not None:
        raise SpikegradError(f"cannot resume from {path}: its {what}: {problem} (the model of config.toml; "
                             f"was config.toml edited?)")


def _check_checkpoint(path: Path, ckpt, model, cfg: Config) -> dict:
    """Everything a resume reads, checked before anything is changed; returns the metadata."""
    where = f"cannot resume from {path}"
    if not isinstance(ckpt, dict):
        raise SpikegradError(f"{where}: it holds a {type(ckpt).__name__}, not a checkpoint")
    missing = [k for k in _CHECKPOINT_KEYS if k not in ckpt]
    if missing:
        raise SpikegradError(f"{where}: it lacks {', '.join(missing)}")
    try:
        meta = json.loads(ckpt["meta"])
    except (TypeError, ValueError) as err:
        raise SpikegradError(f"{where}: its metadata is not JSON ({_first_line(err)})") from None
    if not isinstance(meta, dict):
        raise SpikegradError(f"{where}: its metadata is a {type(meta).__name__}, not a JSON object")
    for key, kind in _META_KEYS.items():
        if key not in meta:
            raise SpikegradError(f"{where}: its metadata lacks {key!r}")
        if not isinstance(meta[key], kind) or isinstance(meta[key], bool):
            raise SpikegradError(f"{where}: its metadata's {key!r} is a {type(meta[key]).__name__}")
    if not all(isinstance(row, dict) and "epoch" in row for row in meta["history"]):
        raise SpikegradError(f"{where}: its metadata's history is not a list of epoch records")
    _check_state(path, "model", ckpt["model"], model)
    if ckpt["best_state"]:
        _check_state(path, "best_state", ckpt["best_state"], model)
    try:
        np.random.default_rng().bit_generator.state = meta["numpy_rng"]
    except (TypeError, ValueError, KeyError) as err:
        raise SpikegradError(f"{where}: its numpy RNG state is invalid ({_first_line(err)})") from None
    rng_state = ckpt["torch_rng"]
    if not (isinstance(rng_state, torch.Tensor) and rng_state.dtype == torch.uint8
            and rng_state.shape == torch.get_rng_state().shape):
        raise SpikegradError(f"{where}: its torch RNG state is not a uint8 tensor of "
                             f"{torch.get_rng_state().numel()} bytes")
    opt = ckpt["optimizer"]
    params = list(model.parameters())
    try:
        groups, state = opt["param_groups"], opt["state"]
        indices = [i for group in groups for i in group["params"]]
    except (TypeError, KeyError) as err:
        raise SpikegradError(f"{where}: its optimizer state is malformed (no {_first_line(err)})") from None
    if sorted(indices) != list(range(len(params))):
        raise SpikegradError(f"{where}: its optimizer state is for {len(indices)} parameters, the model has {len(params)}")
    for i, entry in (state.items() if isinstance(state, dict) else ()):
        for name in STATE_TENSORS.get(cfg.train.optimizer, ()):
            got = entry.get(name) if isinstance(entry, dict) else None
            if not isinstance(got, torch.Tensor) or got.shape != params[i].shape:
                shape = list(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
                raise SpikegradError(f"{where}: optimizer {name} of parameter {i} has shape {shape}, "
                                     f"the parameter {list(params[i].shape)}")
    return meta


def is_finished(run_dir: str | Path) -> bool:
    """True when a run folder holds its final metrics.json."""
    return (Path(run_dir) / "metrics.json").is_file()


def prepare_run_dir(out: str | Path) -> Path:
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SpikegradError(f"run folder {out} already exists and is not empty; choose another --out")
    return out


def _progress(enabled: bool, total: int):
    if not enabled:
        return nullcontext(None)
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
                    transient=False)


def train(cfg: Config, out_dir: str | Path | None = None, progress: bool = False,
          splits: DataSplits | None = None, resume: bool = False, rule: Rule | None = None,
          loss: Loss | None = None) -> dict:
    """Train the network ``cfg`` describes; return the final metrics (also written to out_dir).

    ``resume=True`` continues an unfinished run folder ``out_dir`` from its last checkpoint
    (its config.toml must equal ``cfg``); an empty or missing folder starts afresh, a
    finished one is refused.  The result equals that of an uninterrupted run.  ``rule``: a
    learning-rule object (:mod:`spikegrad.rules`) in place of the one ``train.rule`` names;
    ``loss``: a loss object (:mod:`spikegrad.losses`) in place of ``train.loss``'s.
    """
    cfg.validate()
    cfg = _with_absolute_data_dir(cfg)
    if resume:
        if out_dir is None:
            raise SpikegradError("resuming needs the run folder")
        out = Path(out_dir)
        if (out / "config.toml").is_file():
            _check_resumable(out)
            saved = load_run_config(out)
            if saved.to_dict() != cfg.to_dict():
                raise SpikegradError(f"cannot resume {out}: its config.toml differs from the config given")
        else:
            out = prepare_run_dir(out)
    else:
        out = prepare_run_dir(out_dir) if out_dir is not None else None
    return _train(cfg, out, progress, splits, resume, rule, loss)


def _with_absolute_data_dir(cfg: Config) -> Config:
    """The config with ``data.dir`` made absolute, so that a run folder names its data from
    anywhere (``evaluate`` and ``--resume`` from another working folder)."""
    if not cfg.data.dir or Path(cfg.data.dir).expanduser().is_absolute():
        return cfg
    return cfg.with_overrides({"data.dir": str(Path(cfg.data.dir).expanduser().resolve())})


def resume(run_dir: str | Path, progress: bool = False, splits: DataSplits | None = None,
           rule: Rule | None = None, loss: Loss | None = None) -> dict:
    """Continue a killed run from its last checkpoint, with the run folder's config.toml
    (and the rule and loss objects it was trained with, when those were objects)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").is_file():
        raise SpikegradError(f"cannot resume {run_dir}: not a run folder (no config.toml)")
    _check_resumable(run_dir)
    return _train(load_run_config(run_dir), run_dir, progress, splits, True, rule, loss)


def _check_resumable(run_dir: Path) -> None:
    if is_finished(run_dir):
        raise SpikegradError(f"run {run_dir} has already finished (metrics.json exists); nothing to resume")


def check_event_window(splits: DataSplits, cfg: Config) -> None:
    """Stop when a split loses more than ``data.timing.<name>.max_dropped`` of its spike events past the
    simulated window n_steps·Δt (a data set run on another data set's timing)."""
    from .config import timing_key

    window = cfg.data.n_steps * cfg.model.dt_ms * 1e-3
    key = f"data.timing.{timing_key(cfg.data.name)}"
    for name in ("train", "val", "test"):
        data = getattr(splits, name)
        if not isinstance(data, EventData) or len(data.times) == 0:
            continue
        late = int(np.count_nonzero(data.times >= window))
        share = late / len(data.times)
        if share > cfg.data.max_dropped:
            raise SpikegradError(
                f"{cfg.data.name}/{name}: {late} of {len(data.times)} spike events ({100 * share:.1f}%) fall after "
                f"the simulated window of {cfg.data.n_steps} steps × {cfg.model.dt_ms:g} ms = "
                f"{window * 1e3:g} ms ({key}.n_steps × {key}.dt_ms) and would be dropped (more than "
                f"{key}.max_dropped = {cfg.data.max_dropped:g}); lengthen the window, or accept it with "
                f"--allow-dropped-events ({key}.max_dropped = 1)")


def _train(cfg: Config, out: Path | None, progress: bool, splits: DataSplits | None,
           resume: bool, rule: Rule | None = None, loss: Loss | None = None) -> dict:
    t0 = time.perf_counter()
    tune_allocator()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    splits = splits or load_dataset(cfg)
    for name in ("train", "val", "test"):
        if len(getattr(splits, name)) == 0:
            raise SpikegradError(f"the {name} split of {cfg.data.name!r} is empty; training needs all three")
    check_event_window(splits, cfg)
    device = cfg.torch_device()
    ckpt_path = out / CHECKPOINT if out is not None else None
    ckpt = _load_checkpoint(ckpt_path) if resume and ckpt_path.is_file() else None
    model = init_model(cfg, splits, fresh=ckpt is None)
    loss = loss if loss is not None else make_loss(cfg)
    rule = rule if rule is not None else make_rule(cfg, lambda m, x, y: loss_and_record(m, x, y, cfg, loss))
    if cfg.train.alignment and not hasattr(rule, "alignment"):
        raise SpikegradError(f"train.alignment: rule {getattr(rule, 'name', type(rule).__name__)!r} does not "
                             f"report how its updates align with BPTT's (it has no alignment method)")
    opt = make_optimizer(cfg, model)
    schedule = make_schedule(cfg, opt)
    select, metrics_of = loss.selection, loss.metrics
    rng = np.random.default_rng(cfg.train.seed)

    best_val, best_epoch, best_state, history, diverged = None, 0, None, [], False
    if ckpt is not None:
        meta = _check_checkpoint(ckpt_path, ckpt, model, cfg)
        _restore(ckpt_path, ckpt, model, opt, schedule, rule, device)
        rng.bit_generator.state = meta["numpy_rng"]
        history, best_val, best_epoch = meta["history"], meta["best_val"], meta["best_epoch"]
        best_state = {k: v.to(device) for k, v in ckpt["best_state"].items()} if ckpt["best_state"] else None
        t0 -= meta["seconds"]
    start_epoch = len(history) + 1

    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        _atomic_write(out / "config.toml", cfg.to_toml())
        plugins = loaded_plugins()   # config.toml may name their parts
        if plugins:
            _atomic_write(out / PLUGINS_FILE, _json(plugins, indent=1) + "\n")
        # the checkpoint's history is the truth: drops lines written after it (kill in between)
        _atomic_write(out / "metrics.jsonl", "".join(_json(row) + "\n" for row in history))
        log = (out / "metrics.jsonl").open("a", encoding="utf-8")
    n_batches = math.ceil(len(splits.train) / cfg.train.batch_size)
    with _progress(progress, cfg.train.epochs * n_batches) as bar:
        task = bar.add_task("train", total=cfg.train.epochs * n_batches, completed=len(history) * n_batches,
                            status="") if bar else None
        for epoch in range(start_epoch, cfg.train.epochs + 1):
            model.train()
            loss_sum, sums, seen = 0.0, dict.fromkeys(metrics_of, 0), 0
            for x, y in iterate_batches(splits.train, cfg, cfg.train.batch_size, rng):
                result = rule.step(model, (x, y), opt)
                if result.diverged:
                    diverged = True
                    break
                loss_sum += result.loss * len(y)
                for name, v in loss.batch_metrics(result.output, y).items():
                    sums[name] += v
                seen += len(y)
                if bar:
                    bar.update(task, advance=1, description=f"epoch {epoch}/{cfg.train.epochs}",
                               status=_status(loss_sum / seen, {m: sums[m] / seen for m in metrics_of}))
            if diverged:
                break
            lr = opt.param_groups[0]["lr"]
            if schedule is not None:
                schedule.step()
            model.eval()
            val = evaluate(model, splits.val, cfg, loss)
            row = {"epoch": epoch, "train_loss": loss_sum / seen, **{f"train_{m}": sums[m] / seen for m in metrics_of},
                   "val_loss": val["loss"], **{f"val_{m}": val[m] for m in metrics_of},
                   "val_hidden_spikes_per_sample": val["hidden_spikes_per_sample"]}
            if schedule is not None:
                row["lr"] = lr
            if cfg.train.alignment:   # on the first validation batch, at the epoch's final weights
                row.update(rule.alignment(model, next(iterate_batches(splits.val, cfg, cfg.train.batch_size))))
            row["seconds"] = time.perf_counter() - t0
            history.append(row)
            if out is not None:
                log.write(_json(row) + "\n")
                log.flush()
            if select.better(val[select.metric], best_val):
                best_val, best_epoch = val[select.metric], epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if out is not None:
                _save_checkpoint(ckpt_path, _checkpoint_state(model, opt, schedule, rule, rng, device, history,
                                                              best_val, best_epoch, best_state,
                                                              time.perf_counter() - t0))
            if bar:
                best = "–" if best_val is None else f"{best_val:.3f}"
                bar.update(task, status=f"loss {row['train_loss']:.3f} val {_short(select.metric)} "
                                        f"{val[select.metric]:.3f} (best {best} @ {best_epoch})")
    if out is not None:
        log.close()

    model.eval()
    last_test = evaluate(model, splits.test, cfg, loss)
    if out is not None:
        save_weights(model, out / "last.safetensors")
    if best_state is not None:
        model.load_state_dict(best_state)
    test, val, train_eval = (evaluate(model, s, cfg, loss) for s in (splits.test, splits.val, splits.train))
    metrics = {
        **{f"test_{m}": test[m] for m in metrics_of},
        **{f"val_{m}": val[m] for m in metrics_of},
        **{f"train_{m}": train_eval[m] for m in metrics_of},
        **{f"last_epoch_test_{m}": last_test[m] for m in metrics_of},
        "test_loss": test["loss"],
        "hidden_spikes_per_sample": test["hidden_spikes_per_sample"],
        "hidden_spikes_per_layer": test["hidden_spikes_per_layer"],
        "best_epoch": best_epoch,
        "selection": {"metric": f"val_{select.metric}", "higher_is_better": select.higher_is_better},
        "epochs": len(history),
        "diverged": diverged,
        "kernels": model.kernels() if hasattr(model, "kernels") else [],
        "wall_seconds": time.perf_counter() - t0,
    }
    if out is not None:
        save_weights(model, out / "model.safetensors")
        _atomic_write(out / "metrics.json", _json(metrics, indent=2) + "\n")
    return metrics


def _short(metric: str) -> str:
    return {"accuracy": "acc"}.get(metric, metric)


def _status(loss: float, metrics: dict[str, float]) -> str:
    """The progress bar's running figures: ``loss 0.512 acc 0.871``."""
    return " ".join([f"loss {loss:.3f}", *(f"{_short(m)} {v:.3f}" for m, v in metrics.items())])


def _restore(path: Path, ckpt: dict, model, opt, schedule, rule, device) -> None:
    """Weights, optimiser, schedule, rule state and torch RNG from a checked checkpoint."""
    model.load_state_dict({k: v.to(device) for k, v in ckpt["model"].items()})
    try:
        opt.load_state_dict(ckpt["optimizer"])
        if schedule is not None:
            if not ckpt.get("scheduler"):
                raise KeyError("no learning-rate schedule state")
            schedule.load_state_dict(ckpt["scheduler"])
        if hasattr(rule, "load_state_dict"):
            rule.load_state_dict(ckpt.get("rule") or {})
    except (ValueError, KeyError, TypeError, RuntimeError) as err:
        raise SpikegradError(f"cannot resume from {path}: its optimizer, schedule or rule state does not fit "
                             f"({_first_line(err)})") from None
    torch.set_rng_state(ckpt["torch_rng"])
    if device.type == "cuda" and ckpt.get("cuda_rng"):
        torch.cuda.set_rng_state_all(ckpt["cuda_rng"])


def _checkpoint_state(model, opt: torch.optim.Optimizer, schedule, rule, rng: np.random.Generator, device,
                      history: list, best_val: float | None, best_epoch: int, best_state: dict | None,
                      seconds: float) -> dict:
    meta = {"epoch": len(history), "history": history, "best_val": best_val, "best_epoch": best_epoch,
            "numpy_rng": rng.bit_generator.state, "seconds": seconds}
    cpu = lambda state: {k: v.detach().cpu().clone() for k, v in state.items()}  # noqa: E731
    return {
        "meta": json.dumps(meta),  # 128-bit RNG integers and floats, exactly
        "model": cpu(model.state_dict()),
        "optimizer": opt.state_dict(),
        "scheduler": schedule.state_dict() if schedule is not None else {},
        "rule": rule.state_dict() if hasattr(rule, "state_dict") else {},
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
        "best_state": cpu(best_state) if best_state is not None else {},
    }


def load_weights(model: SNN, source: str | Path, device=None) -> None:
    """Load weights from a run folder (its model.safetensors) or a .safetensors file."""
    path = Path(source)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise SpikegradError(f"cannot load weights: {path} does not exist")
    try:
        state = load_file(str(path), device=str(device or "cpu"))
    except Exception as err:  # safetensors raises several types
        raise SpikegradError(f"cannot load weights {path}: {_first_line(err)}") from None
    problem = _state_mismatch(state, model)
    if problem is not None:
        raise SpikegradError(f"cannot load weights {path}: {problem}")
    model.load_state_dict(state)


def load_run_config(run_dir: str | Path) -> Config:
    """A run folder's config.toml, after the plugins its plugins.json names (their parts
    may be named in it)."""
    load_recorded_plugins(run_dir)
    return load_config(Path(run_dir) / "config.toml")


def load_run(run_dir: str | Path) -> tuple[Config, SNN, DataSplits]:
    """Config, best-validation model and data of a finished run folder."""
    run_dir = Path(run_dir)
    weights = run_dir / "model.safetensors"
    if not (run_dir / "config.toml").is_file() or not weights.is_file():
        raise SpikegradError(f"{run_dir} is not a finished run folder (needs config.toml and model.safetensors)")
    cfg = load_run_config(run_dir)
    splits = load_dataset(cfg)
    with torch.random.fork_rng(devices=[]):  # leaves the caller's RNG state alone
        model = init_model(cfg, splits, fresh=False)
    load_weights(model, weights, cfg.torch_device())
    model.eval()
    return cfg, model, splits


def evaluate_run(run_dir: str | Path) -> dict:
    """Re-evaluate a run folder's saved best model on its validation and test splits."""
    cfg, model, splits = load_run(run_dir)
    loss = make_loss(cfg)
    test, val = evaluate(model, splits.test, cfg, loss), evaluate(model, splits.val, cfg, loss)
    return {**{f"test_{m}": test[m] for m in loss.metrics}, **{f"val_{m}": val[m] for m in loss.metrics},
            "test_loss": test["loss"], "hidden_spikes_per_sample": test["hidden_spikes_per_sample"]}

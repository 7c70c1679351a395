"""One configuration schema (TOML) for training runs; sweeps reuse it field by field.

Sections ``[data]`` (with ``[data.randman]``), ``[model]``, ``[train]``,
``[regularizer]``.  Every field has a default; a file or a dotted override
(``model.beta = 5``) changes only what it names.  Unknown keys, wrong types and
impossible values raise :class:`SpikegradError` with a one-line message naming them.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


from ._numba import numba_available
from .data import DATASETS, available_datasets, dataset_defaults, dataset_max_dropped, dataset_timing
from .data.audio import AudioSpec
from .data.clicks import ClicksSpec
from .data.mnist import LatencySpec
from .data.randman import RandmanSpec
from .data.shd import ShdSpec
from .errors import SpikegradError
from .init import INITS
from .dynamics import NEURON_MODELS, ALIFParams, CubaLIFParams, LIFParams
from .neurons import INPUT_PATHS, available_backends
from .readouts import get_readout
from .losses import LOSSES, make_loss
from .models import MODELS
from .network import OUTPUTS
from .optim import check_train_config
from .rules import RULES
from .regularizers import ActivityRegularizer


@dataclass
class Timing:
    """Simulation steps and their width for one data set (``[data.timing.NAME]``), and the
    share of a split's spike events that may fall after that window (a run stops above it)."""

    n_steps: int
    dt_ms: float
    max_dropped: float = 0.01

    def __post_init__(self) -> None:
        if not (isinstance(self.max_dropped, (int, float)) and 0 <= self.max_dropped <= 1):
            raise SpikegradError(f"data.timing max_dropped must be a fraction in [0, 1], got {self.max_dropped!r}")
        if isinstance(self.n_steps, bool) or not isinstance(self.n_steps, int) or self.n_steps < 1:
            raise SpikegradError(f"data.timing n_steps must be an integer ≥ 1, got {self.n_steps!r}")
        if not (isinstance(self.dt_ms, (int, float)) and math.isfinite(self.dt_ms) and self.dt_ms > 0):
            raise SpikegradError(f"data.timing dt_ms must be a positive time in ms, got {self.dt_ms!r}")


def _timing(name: str):
    return field(default_factory=lambda: Timing(*dataset_timing(name), max_dropped=dataset_max_dropped(name)))


@dataclass
class TimingTable:
    """Each data set's own timing: a config written for one data set (``spikegrad config``
    dumps every entry) never runs another on its steps and Δt."""

    randman: Timing = _timing("randman")
    mnist: Timing = _timing("mnist")
    fashion_mnist: Timing = _timing("fashion-mnist")
    shd: Timing = _timing("shd")
    ssc: Timing = _timing("ssc")
    rawhd: Timing = _timing("rawhd")
    rawsc: Timing = _timing("rawsc")
    clicks: Timing = _timing("clicks")

    def of(self, name: str) -> Timing:
        return getattr(self, timing_key(name))


def timing_key(name: str) -> str:
    """The ``data.timing`` entry of data set ``name`` (``fashion-mnist`` → ``fashion_mnist``)."""
    return name.replace("-", "_")


# data.n_steps and model.dt_ms: the chosen data set's timing, resolved from data.timing when
# a Config is made; given in a file or a flag they set that data set's entry (aliases).
_UNSET = -1


@dataclass
class DataConfig:
    name: str = "randman"
    seed: int = 1                      # --data-seed: fixes the data set, not the run
    n_steps: int = _UNSET              # simulated steps: data.timing.<name>.n_steps (alias)
    max_dropped: float = _UNSET        # data.timing.<name>.max_dropped (alias)
    dir: str = ""                      # --data-dir: files in the official layout ("" = cache)
    timing: TimingTable = field(default_factory=TimingTable)
    randman: RandmanSpec = field(default_factory=RandmanSpec)
    mnist: LatencySpec = field(default_factory=LatencySpec)      # mnist, fashion-mnist
    shd: ShdSpec = field(default_factory=ShdSpec)                # shd, ssc
    audio: AudioSpec = field(default_factory=AudioSpec)          # rawhd, rawsc
    clicks: ClicksSpec = field(default_factory=ClicksSpec)


READOUT_GAINS = ("same", "on", "off")


@dataclass
class ModelConfig:
    arch: str = "snn"                  # model builder (spikegrad.models.MODELS)
    hidden: list[int] = field(default_factory=lambda: [128])  # [] or [0]: no hidden layer
    neuron: str = "lif"                # neuron model: "lif" (eq. 4.1), "alif" (adaptive threshold), "cuba" (peers' ordering, for NIR export)
    recurrent: bool = False
    surrogate: str = "superspike"
    beta: float = 10.0                 # surrogate slope
    reset: str = "zero"                # "zero" (eq. 4.1) or "subtract" (tutorial eq. 7)
    detach_reset: bool = True          # False: gradient flows through the reset
    recurrent_grad: str = "prop"       # "prop" or "ctl" (S detached inside V·S)
    input_gain: bool = True            # (1 − β) factor on the input current
    dt_ms: float = _UNSET              # step width: data.timing.<name>.dt_ms (alias)
    tau_mem_ms: float = 10.0
    tau_syn_ms: float = 5.0
    tau_out_ms: float = 20.0
    tau_adapt_ms: float = 200.0        # alif: adaptation time constant τ_a
    beta_adapt: float = 1.8            # alif: threshold 1 + β_a b
    detach_adaptation: bool = False    # alif: no gradient through the adaptation b
    threshold: float = 1.0             # cuba: firing threshold θ (eq. 4.1's is 1)
    decays: str = "exact"              # cuba: decay of τ: "exact" exp(−Δt/τ) or "euler" 1 − Δt/τ (the peers')
    readout: str = "max"               # reduction over time: "max", "sum", "mean", "last"
    output: str = "readout"            # "readout" (leaky readout → logits) or "spikes" (a spiking output layer)
    readout_tau_syn_ms: float = 0.0    # the readout's synaptic τ; 0: model.tau_syn_ms
    readout_input_gain: str = "same"   # the readout's (1 − β_out) input factor: "same" as model.input_gain, "on", "off"
    readout_init: float = -1e-3        # U_out[0]
    readout_steps: int = 0             # response window: the readout sees only the last N steps; 0: all
    backend: str = "auto"              # kernel: "auto" (first that supports the call: compiled, fused, reference), or one by name
    input_path: str = "auto"           # x·Wᵀ: "auto" (events for sparse CPU input), "dense", "events" (cost ∝ input events)
    init: str = "uniform"              # "uniform" (paper §4.2.3) or "fluctuation" (σ_U-targeted, see spikegrad.init)
    init_sigma_u: float = 1.0          # fluctuation init: target std of the free membrane potential


@dataclass
class TrainConfig:
    epochs: int = 80
    batch_size: int = 250
    lr: float = 2e-3
    seed: int = 0                      # --seed: weight init and shuffling
    threads: int = 0                   # torch threads; 0 leaves torch's default
    device: str = "auto"               # "auto" (cuda if available), "cpu", "cuda", "cuda:1", …
    init_from: str = ""                # start from these weights: a run folder or a .safetensors file
    rule: str = "bptt"                 # learning rule (spikegrad.rules.RULES): "bptt", "fa", "dfa", "dcll", "rtrl"
    alignment: bool = False            # log per epoch: cos∠(rule's update, BPTT's gradient), ∠(W, feedback)
    dcll_burn_in_ms: float = 10.0      # dcll: no local loss before this time
    kolen_pollack: float = 0.0         # fa: > 0 turns on Kolen–Pollack with this decay λ per step (0: off)
    feedback_scale: float = 1.0        # fa, dfa: random feedback matrices ~ U(±scale/√fan_in), the forward init's range
    loss: str = "cross_entropy"        # loss (spikegrad.losses.LOSSES): "cross_entropy", "van_rossum"
    van_rossum_tau_ms: float = 10.0    # van_rossum: kernel time constant
    optimizer: str = "adam"            # spikegrad.optim.OPTIMIZERS: "adam", "adamw", "sgd"
    momentum: float = 0.9              # sgd
    weight_decay: float = 0.0          # adam, sgd: L2 on the gradient; adamw: decoupled
    schedule: str = "constant"         # learning rate per epoch: "constant", "cosine", "step"
    lr_min: float = 0.0                # cosine: the last epoch's learning rate
    step_epochs: int = 30              # step: epochs between reductions
    step_gamma: float = 0.1            # step: factor per reduction
    clip_grad_norm: float = 0.0        # > 0: clip the gradients' joint L2 norm to this before each step
    lr_groups: list[str] = field(default_factory=list)  # ["PATTERN=LR", …]: own learning rates by parameter name


@dataclass
class RegularizerConfig:
    lower_strength: float = 0.0
    lower_threshold: float = 0.0       # spike count per neuron and trial
    upper_strength: float = 0.0
    upper_threshold: float = 0.0       # mean spike count per neuron and trial
    power: int = 2


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    regularizer: RegularizerConfig = field(default_factory=RegularizerConfig)

    def __post_init__(self) -> None:
        """Resolve the aliases: an explicit data.n_steps / model.dt_ms sets the chosen data
        set's timing entry; then both show that entry."""
        d, m = self.data, self.model
        if d.name not in DATASETS:
            return                                     # validate() names the unknown data set
        entry = d.timing.of(d.name)
        if d.n_steps != _UNSET or m.dt_ms != _UNSET or d.max_dropped != _UNSET:
            entry = Timing(entry.n_steps if d.n_steps == _UNSET else d.n_steps,
                           entry.dt_ms if m.dt_ms == _UNSET else m.dt_ms,
                           entry.max_dropped if d.max_dropped == _UNSET else d.max_dropped)
            setattr(d.timing, timing_key(d.name), entry)
        d.n_steps, m.dt_ms, d.max_dropped = entry.n_steps, entry.dt_ms, entry.max_dropped

    # -- derived objects ---------------------------------------------------------------
    @property
    def hidden_sizes(self) -> list[int]:
        return [h for h in self.model.hidden if h != 0]

    def neuron_params(self) -> LIFParams:
        """The parameter record of ``model.neuron`` (``LIFParams``, ``ALIFParams`` or ``CubaLIFParams``)."""
        m = self.model
        common = dict(dt=m.dt_ms * 1e-3, tau_mem=m.tau_mem_ms * 1e-3, tau_syn=m.tau_syn_ms * 1e-3,
                      reset=m.reset, input_gain=m.input_gain, detach_reset=m.detach_reset,
                      recurrent_grad=m.recurrent_grad, surrogate=m.surrogate, beta=m.beta)
        NEURON_MODELS.get(m.neuron)
        if m.neuron != "cuba" and (m.threshold != 1.0 or m.decays != "exact"):
            raise SpikegradError(f"model.threshold and model.decays set the 'cuba' neuron model; model.neuron "
                                 f"{m.neuron!r} has threshold 1 and exact decays (eq. 4.1)")
        if m.neuron == "alif":
            return ALIFParams(**common, tau_adapt=m.tau_adapt_ms * 1e-3, beta_adapt=m.beta_adapt,
                              detach_adaptation=m.detach_adaptation)
        if m.neuron == "cuba":
            return CubaLIFParams(**common, threshold=m.threshold, decays=m.decays)
        if m.neuron != "lif":
            raise SpikegradError(f"model.neuron {m.neuron!r} has no config fields yet; build it from the Python API")
        return LIFParams(**common)

    def regularizer_obj(self) -> ActivityRegularizer:
        return ActivityRegularizer(**dataclasses.asdict(self.regularizer))

    def validate(self) -> "Config":
        """Raise SpikegradError naming the first impossible value; return self."""
        m, t, d = self.model, self.train, self.data
        if d.name not in available_datasets():
            raise DATASETS.unknown(d.name)
        if d.n_steps < 1:
            raise SpikegradError(f"data.n_steps must be ≥ 1, got {d.n_steps}")
        if any(h < 0 for h in m.hidden) or (0 in m.hidden and len(m.hidden) > 1):
            raise SpikegradError(f"model.hidden must be positive sizes, or 0 alone for none; got {m.hidden}")
        for name in ("dt_ms", "tau_mem_ms", "tau_syn_ms", "tau_out_ms"):
            value = getattr(m, name)
            if not (math.isfinite(value) and value > 0):
                raise SpikegradError(f"model.{name} must be a positive time in ms, got {value}")
        if m.readout_steps < 0 or m.readout_steps > d.n_steps:
            raise SpikegradError(f"model.readout_steps must lie in [0, data.n_steps={d.n_steps}], got {m.readout_steps}")
        if not math.isfinite(m.readout_init):
            raise SpikegradError(f"model.readout_init must be finite, got {m.readout_init}")
        if m.input_path not in INPUT_PATHS:
            raise SpikegradError(f"unknown model.input_path {m.input_path!r}; choose one of: {', '.join(INPUT_PATHS)}")
        if m.init not in INITS:
            raise SpikegradError(f"unknown model.init {m.init!r}; choose one of: {', '.join(INITS)}")
        if not (math.isfinite(m.init_sigma_u) and m.init_sigma_u > 0):
            raise SpikegradError(f"model.init_sigma_u must be > 0, got {m.init_sigma_u}")
        if m.neuron not in NEURON_MODELS:
            raise NEURON_MODELS.unknown(m.neuron, "model.neuron")
        if m.backend == "compiled" and m.neuron == "lif" and not numba_available():
            raise SpikegradError("model.backend 'compiled' needs the package numba, which cannot be imported; "
                                 "install it with: pip install 'numba>=0.60' (or choose 'fused' or 'reference')")
        if m.backend not in available_backends(m.neuron):
            raise SpikegradError(f"unknown backend {m.backend!r} for model.neuron {m.neuron!r}; "
                                 f"choose one of: {', '.join(available_backends(m.neuron))}")
        self.neuron_params()
        get_readout(m.readout)
        if m.arch not in MODELS:
            raise MODELS.unknown(m.arch, "model.arch")
        if m.output not in OUTPUTS:
            raise SpikegradError(f"unknown model.output {m.output!r}; choose one of: {', '.join(OUTPUTS)}")
        if m.output == "spikes" and m.readout_steps:
            raise SpikegradError("model.output 'spikes' has no response window: model.readout_steps must be 0")
        if not (math.isfinite(m.readout_tau_syn_ms) and m.readout_tau_syn_ms >= 0):
            raise SpikegradError(f"model.readout_tau_syn_ms must be > 0 ms, or 0 for model.tau_syn_ms; "
                                 f"got {m.readout_tau_syn_ms}")
        if m.readout_input_gain not in READOUT_GAINS:
            raise SpikegradError(f"model.readout_input_gain must be one of {', '.join(READOUT_GAINS)}; "
                                 f"got {m.readout_input_gain!r}")
        self.regularizer_obj()
        if t.epochs < 1:
            raise SpikegradError(f"train.epochs must be ≥ 1, got {t.epochs}")
        if t.batch_size < 1:
            raise SpikegradError(f"train.batch_size must be ≥ 1, got {t.batch_size}")
        if not (t.lr > 0 and math.isfinite(t.lr)):
            raise SpikegradError(f"train.lr must be > 0, got {t.lr}")
        for name, seed in (("data.seed", d.seed), ("train.seed", t.seed)):
            if seed < 0:
                raise SpikegradError(f"{name} must be ≥ 0, got {seed}")
        if t.threads < 0:
            raise SpikegradError(f"train.threads must be ≥ 0, got {t.threads}")
        if t.rule not in RULES:
            raise RULES.unknown(t.rule, "train.rule")
        if not (math.isfinite(t.feedback_scale) and t.feedback_scale > 0):
            raise SpikegradError(f"train.feedback_scale must be > 0, got {t.feedback_scale}")
        if not (math.isfinite(t.dcll_burn_in_ms) and t.dcll_burn_in_ms >= 0):
            raise SpikegradError(f"train.dcll_burn_in_ms must be ≥ 0, got {t.dcll_burn_in_ms}")
        if not (math.isfinite(t.kolen_pollack) and 0 <= t.kolen_pollack < 1):
            raise SpikegradError(f"train.kolen_pollack must lie in [0, 1), got {t.kolen_pollack}")
        if t.loss not in LOSSES:
            raise LOSSES.unknown(t.loss, "train.loss")
        if not (math.isfinite(t.van_rossum_tau_ms) and t.van_rossum_tau_ms > 0):
            raise SpikegradError(f"train.van_rossum_tau_ms must be > 0, got {t.van_rossum_tau_ms}")
        check_train_config(t)
        make_loss(self)
        self.torch_device()
        return self

    def torch_device(self):
        """The torch device ``train.device`` names; SpikegradError if it is unknown or absent."""
        import torch

        name = self.train.device
        if name == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(name)
        except RuntimeError:
            raise SpikegradError(f"train.device {name!r} is not a device name (auto, cpu, cuda, cuda:N)") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise SpikegradError(f"train.device {name!r} asked for, but torch sees no CUDA device")
        return device

    # -- (de)serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every field, except the two aliases (data.n_steps, model.dt_ms): the timing is in
        ``data.timing``, per data set."""
        out = dataclasses.asdict(self)
        del out["data"]["n_steps"], out["data"]["max_dropped"], out["model"]["dt_ms"]
        return out

    def to_toml(self) -> str:
        import tomli_w  # only for writing TOML (a GPU machine may lack it)

        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: str = "config") -> "Config":
        """Defaults ← the chosen data set's defaults ← ``raw`` (nested tables)."""
        if not isinstance(raw, Mapping):
            raise SpikegradError(f"{source}: top level must be a table")
        raw = normalise_timing(raw)
        data = raw.get("data", {})
        name = data.get("name", DataConfig.name) if isinstance(data, Mapping) else DataConfig.name
        if isinstance(name, str) and name in available_datasets():
            raw = merge_nested(nest(dataset_defaults(name)), raw)
        cfg = _build(cls, raw, source, "")
        try:
            return cfg.validate()
        except SpikegradError as err:
            raise SpikegradError(f"{source}: {err}") from None

    def get(self, key: str) -> Any:
        """Value of a dotted key such as ``model.beta``; SpikegradError if there is none."""
        return _field_value(self, key, "config")

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any], source: str = "override") -> "Config":
        """Defaults (with the chosen data set's) ← dotted keys, e.g. {"data.name": "mnist"}."""
        return cls.from_dict(nest(overrides), source)

    def with_overrides(self, overrides: Mapping[str, Any], source: str = "override") -> "Config":
        """A copy with dotted keys replaced, e.g. {"model.beta": 5, "train.lr": 1e-3}.

        Every other field keeps its value; to switch data set *with* its defaults, use
        :meth:`from_overrides`.
        """
        for key in overrides:
            if dataclasses.is_dataclass(_field_value(self, key, source)):
                raise SpikegradError(f"{source}: {key!r} is a table; set one of its fields")
        return Config.from_dict(merge_nested(self.to_dict(), nest(overrides)), source)


def normalise_timing(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``data.n_steps`` / ``data.max_dropped`` / ``model.dt_ms`` of one source (a file, a set
    of flags) moved into ``data.timing.<that source's data set>``, and every timing entry
    completed from its data set: a file written for randman keeps its 70 steps of 1 ms for
    randman even when ``--dataset shd`` is added on the command line.  Malformed tables are
    left as they are for the schema check to name."""
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in raw.items()}
    data, model = out.get("data", {}), out.get("model", {})
    if not isinstance(data, dict) or not isinstance(model, dict):
        return out
    aliases = {key: data.pop(key) for key in ("n_steps", "max_dropped") if key in data}
    if "dt_ms" in model:
        aliases["dt_ms"] = model.pop("dt_ms")
    name = data.get("name", DataConfig.name)
    timing = data.get("timing", {})
    entry = timing.get(timing_key(name), {}) if isinstance(timing, Mapping) and isinstance(name, str) else None
    if aliases and name in DATASETS and isinstance(entry, Mapping):
        timing = {**timing, timing_key(name): {**entry, **aliases}}
        out["data"] = data = {**data, "timing": timing}
    elif aliases:                                        # validate() names what is wrong
        data.update({k: v for k, v in aliases.items() if k != "dt_ms"})
        if "dt_ms" in aliases:
            out["model"] = {**model, "dt_ms": aliases["dt_ms"]}
        if data:
            out["data"] = data
    if isinstance(data.get("timing"), Mapping):
        data["timing"] = _complete_timing(data["timing"])
        out["data"] = data
    return out


def _complete_timing(table: Mapping[str, Any]) -> dict[str, Any]:
    """A ``[data.timing]`` table whose entries may name only some fields: the others are the
    data set's own."""
    names = {timing_key(n): n for n in DATASETS}
    out = {}
    for key, entry in table.items():
        if isinstance(entry, Mapping) and key in names and not {"n_steps", "dt_ms", "max_dropped"} <= set(entry):
            steps, dt = dataset_timing(names[key])
            entry = {"n_steps": steps, "dt_ms": dt, "max_dropped": dataset_max_dropped(names[key]), **entry}
        out[key] = entry
    return out


def load_config(path: str | Path) -> Config:
    """Read a TOML config; missing fields keep their defaults (and the data set's)."""
    return Config.from_dict(read_toml(path), str(path))


def read_toml(path: str | Path) -> dict[str, Any]:
    """The raw tables of a TOML file; SpikegradError naming the file if it cannot be read."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SpikegradError(f"cannot read config {path}: {getattr(err, 'strerror', None) or err}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpikegradError(f"{path}: invalid TOML: {err}") from None
    return raw


def _field_value(cfg: Any, key: str, source: str) -> Any:
    node = cfg
    for part in key.split("."):
        if not dataclasses.is_dataclass(node) or part not in {f.name for f in dataclasses.fields(node)}:
            raise SpikegradError(f"{source}: unknown key {key!r}")
        node = getattr(node, part)
    return node


def nest(dotted: Mapping[str, Any]) -> dict[str, Any]:
    """{"model.beta": 5} → {"model": {"beta": 5}}."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        node, parts = out, key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SpikegradError(f"config key {key!r} conflicts with {part!r} set to a value")
            node = child
        node[parts[-1]] = value
    return out


def merge_nested(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: tables merge key by key, anything else in ``top`` replaces ``base``."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_nested(out[key], value)
        else:
            out[key] = value
    return out


def parse_value(text: str) -> Any:
    """Parse a command-line override value as a TOML value (bare words stay strings)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _build(cls: type, raw: Any, source: str, prefix: str):
    """Instantiate dataclass ``cls`` from a mapping, checking keys and types."""
    where = prefix.rstrip(".") or "top level"
    if not isinstance(raw, Mapping):
        raise SpikegradError(f"{source}: {where} must be a table, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise SpikegradError(f"{source}: unknown key {prefix + unknown[0]!r} (known: {', '.join(sorted(names))})")
    kwargs = {}
    for key, value in raw.items():
        kwargs[key] = _coerce(hints[key], value, source, prefix + key)
    try:
        return cls(**kwargs)
    except SpikegradError as err:  # a section's own checks (e.g. RandmanSpec)
        raise SpikegradError(f"{source}: {err}") from None


def _coerce(hint: Any, value: Any, source: str, key: str):
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, source, key + ".")
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            raise SpikegradError(f"{source}: {key} must be a list, got {value!r}")
        return [_coerce(item, v, source, key) for v in value]
    if hint is bool:
        if not isinstance(value, bool):
            raise SpikegradError(f"{source}: {key} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise SpikegradError(f"{source}: {key} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpikegradError(f"{source}: {key} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise SpikegradError(f"{source}: {key} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint!r} for {key}")  # pragma: no cover

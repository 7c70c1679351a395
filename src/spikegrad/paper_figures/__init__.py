"""The paper's sweep figures (Zenke & Vogels 2021, figures 3, 5 and 9) from finished sweeps.

:func:`results_table` turns one or more sweep folders (their Optuna storage, read with
:mod:`spikegrad.sweeps`) into one row per finished trial: every swept config field,
the fields the figures group by (resolved from the trial's full config, so a field the
sweep keeps fixed is a column too), ``n_hidden``, ``seed`` and the metrics.  Each figure
function takes such a :class:`Results`, writes ``NAME.png`` (matplotlib, Agg) and
``NAME.csv`` (the numbers plotted, long format) and returns those numbers.

- ``fig3``: per surrogate, mean validation accuracy over the β × η grid (heatmap), and
  mean ± sd test accuracy of the best-k configurations per shape and hidden depth.
- ``fig5``: the scale study: sCtl / aCtl / aDR (SuperSpike vs asymptotic SuperSpike ×
  detached vs differentiable reset) and, for recurrent networks, Prop vs Ctl; best-k
  configurations per group and hidden depth.
- ``fig9``: test accuracy against mean hidden spikes per input (log axis) with a fitted
  sigmoid in log s; the critical spike count exp(c) per series.
- ``fig2``: learning curves (train loss, validation accuracy per epoch, from each trial's
  ``metrics.jsonl``) of the true gradient against surrogate gradients, and activity
  snapshots of one trained surrogate network before and after training.
- ``fig6``: top-k test accuracy of FF/RC × Max/Sum readout networks per data set.
- ``fig8``: hidden spike-count histograms on the test set of the best unregularised and
  the best regularised network (their saved weights).
- ``landscape``: the loss on a 2-D plane through a trained network's weights along two
  random filter-normalised directions (Li et al. 2018), for one run folder or the best
  trial of a sweep.

Figures that need more than the results table (per-epoch curves, weights) read the
trial's run folder, ``SWEEP_DIR/trials/<trial>/`` (the row's ``run_dir``).

See docs/SWEEPS.md, section "Figures".

The package: :mod:`.results` (the results table, CSV, column checks), :mod:`.analysis`
(the sigmoid fit, trained networks from run folders, spike counts, the loss plane),
:mod:`.plots` (the figures), :mod:`.catalog` (the figures by name, :func:`make_figure`).
"""

from .analysis import (_load_trained, filter_normalized_direction, fit_sigmoid, hidden_spike_counts, loss_plane,
                       plane_grid, sigmoid_log)
from .catalog import FIGURES, check_figure_name, is_run_folder, make_figure, takes_top_k
from .plots import (ARCH_ORDER, CURVE_METRICS, SCALE_PREFIX, arch_label, count_edges, fig2, fig3, fig5, fig6, fig8,
                    fig9, is_regularised, landscape, landscape_run, scale_group, shape_label, spike_series)
from .results import FIELDS, METRICS, Results, read_history, results_table, write_csv

__all__ = ["ARCH_ORDER", "CURVE_METRICS", "FIELDS", "FIGURES", "METRICS", "Results", "SCALE_PREFIX", "arch_label",
           "check_figure_name", "count_edges", "fig2", "fig3", "fig5", "fig6", "fig8", "fig9",
           "filter_normalized_direction", "fit_sigmoid", "hidden_spike_counts", "is_regularised", "is_run_folder",
           "landscape", "landscape_run", "loss_plane", "make_figure", "plane_grid", "read_history", "results_table",
           "scale_group", "shape_label", "sigmoid_log", "spike_series", "takes_top_k", "write_csv"]

"""Pictures of a rain-rate forecast in pysteps' precipitation scale, one per frame.

``maps/input_-20min.png`` .. ``maps/forecast_+10min.png`` (and ``observed_+10min.png`` with
the truth): mm/h in pysteps' ``plot_precip_field`` levels and colours, titled with the UTC
valid time and the lead in minutes; no data is gray, dry white. With matplotlib and
pysteps the figure is pysteps' own (on its map when pysteps can draw one: cartopy
installed and the files' projection known); without them the same levels and colours are
drawn with OpenCV (:func:`predrnn_tf.evaluation.plots.colorize_rain_rate`).

An ensemble's exceedance probabilities (:func:`write_probability_maps`):
``probability/p_ge_1mmh_+10min.png`` ..., the percentage of members at or above the
threshold, colour bar in percent, titled with the UTC valid time and lead (matplotlib).
"""

from __future__ import annotations

import io
import logging
import os
import warnings

import numpy as np

from predrnn_tf import files
from predrnn_tf.inference.forecast_netcdf import ForecastContext
from predrnn_tf.inference.publishing import write_png

MAPS_FOLDER = "maps"
PROBABILITY_FOLDER = "probability"


def frame_titles(context: ForecastContext, inputs: int, outputs: int
                 ) -> list[tuple[str, str]]:
    """``(file stem, title)`` of each input frame, then each lead."""
    import datetime

    named = []
    for moment in context.input_times[-inputs:]:
        minutes = round((moment - context.issued).total_seconds() / 60)
        named.append((f"input_{minutes:+d}min", f"input {moment:%Y-%m-%d %H:%M} UTC "
                                                f"({minutes:+d} min)"))
    for lead in context.lead_minutes(outputs):
        moment = context.issued + datetime.timedelta(minutes=lead)
        named.append((f"forecast_{lead:+.0f}min", f"forecast {moment:%Y-%m-%d %H:%M} UTC "
                                                  f"(+{lead:g} min)"))
    return named


def _pysteps_png(rate: np.ndarray, title: str, geodata: dict | None) -> bytes:
    """pysteps' ``plot_precip_field`` of ``rate`` as PNG bytes (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    from predrnn_tf.inference.radar_grid import import_pysteps_quietly

    visualization = import_pysteps_quietly("pysteps.visualization")
    figure = pyplot.figure(figsize=(6, 6 * rate.shape[0] / max(rate.shape[1], 1) + 0.6))
    try:
        with warnings.catch_warnings():  # "cartopy package is required": no map, same plot
            warnings.filterwarnings("ignore", message=".*cartopy.*")
            visualization.plot_precip_field(rate, geodata=geodata, units="mm/h",
                                            colorscale="pysteps", title=title)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    finally:
        pyplot.close(figure)
    return buffer.getvalue()


def _opencv_image(rate: np.ndarray, title: str) -> np.ndarray:
    """The same scale drawn with OpenCV: a title line, the field, the colour bar."""
    from predrnn_tf.evaluation import charts, plots

    scale = plots.display_scale(rate.shape[0])
    image = np.repeat(np.repeat(plots.colorize_rain_rate(rate), scale, 0), scale, 1)
    header = np.full((22, image.shape[1], 3), 255, np.uint8)
    charts.put_text(header, title, (4, 15), 0.42)
    image = np.concatenate([header, image], axis=0)
    return np.concatenate([image, plots.draw_rain_rate_colorbar(max(image.shape[0], 200))
                           [:image.shape[0]]], axis=1)


def write_maps(folder: str, frames: list[np.ndarray], context: ForecastContext,
               truth: np.ndarray | None = None) -> str:
    """Writes ``folder/maps/*.png``: ``frames`` = inputs then forecast, ``[H, W]`` mm/h."""
    root = os.path.join(folder, MAPS_FOLDER)
    os.makedirs(root, exist_ok=True)
    inputs = len(context.input_times)
    named = frame_titles(context, inputs, len(frames) - inputs)
    if truth is not None:
        leads = context.lead_minutes(len(truth))
        named += [(f"observed_{lead:+.0f}min", title.replace("forecast", "observed"))
                  for lead, (_, title) in zip(leads, named[inputs:])]
        frames = list(frames) + list(truth)
    geodata = context.georeference.pysteps_metadata() if context.georeference else None
    use_pysteps = True
    for (stem, title), rate in zip(named, frames):
        path = os.path.join(root, f"{stem}.png")
        if use_pysteps:
            try:
                files.write_bytes(path, _pysteps_png(rate, title, geodata))
                continue
            except ImportError as error:
                logging.getLogger(__name__).info("maps drawn with OpenCV: %s", error)
                use_pysteps = False
        write_png(path, _opencv_image(rate, title))
    return root


def probability_titles(threshold: float, count: int, context: ForecastContext | None
                       ) -> list[tuple[str, str]]:
    """``(file stem, title)`` of each lead's P(R >= threshold) map (UTC times with context)."""
    import datetime

    name = f"p_ge_{threshold:g}mmh".replace(".", "p")
    if context is None:
        return [(f"{name}_lead{step + 1:02d}", f"P(R \u2265 {threshold:g} mm/h), lead {step + 1}")
                for step in range(count)]
    return [(f"{name}_{lead:+.0f}min",
             f"P(R \u2265 {threshold:g} mm/h) "
             f"{context.issued + datetime.timedelta(minutes=lead):%Y-%m-%d %H:%M} UTC "
             f"(+{lead:g} min)")
            for lead in context.lead_minutes(count)]


def _probability_png(probability: np.ndarray, title: str) -> bytes:
    """One ``[H, W]`` probability field (0..1, NaN = no coverage) as a PNG in percent."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    colours = matplotlib.colormaps["Blues"].with_extremes(bad="0.8", under="white")  # no data
    height, width = probability.shape
    figure = pyplot.figure(figsize=(6, 6 * height / max(width, 1) + 0.6))
    try:
        axis = figure.add_subplot(1, 1, 1)
        image = axis.imshow(np.ma.masked_invalid(100.0 * probability), cmap=colours,
                            vmin=0.001, vmax=100.0, interpolation="nearest")  # 0 %: white
        figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04).set_label("probability (%)")
        axis.set_title(title, fontsize=10)
        axis.set_xticks([])
        axis.set_yticks([])
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    finally:
        pyplot.close(figure)
    return buffer.getvalue()


def write_probability_maps(folder: str, probabilities: dict[float, np.ndarray],
                           context: ForecastContext | None) -> str:
    """Writes ``folder/probability/*.png``; ``probabilities`` maps mm/h to ``[T, H, W]`` 0..1.

    Raises:
      ImportError: matplotlib is missing.
    """
    root = os.path.join(folder, PROBABILITY_FOLDER)
    os.makedirs(root, exist_ok=True)
    for threshold, fields in probabilities.items():
        for (stem, title), field in zip(probability_titles(threshold, len(fields), context),
                                        fields, strict=True):
            files.write_bytes(os.path.join(root, f"{stem}.png"), _probability_png(field, title))
    return root

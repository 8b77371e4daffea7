"""The forecast as CF netCDF, through pysteps' netCDF exporter (pysteps and netCDF4 needed).

``forecast.nc`` (CF-1.7, written by ``pysteps.io.exporters.initialize_forecast_exporter_netcdf``):

- ``precip_intensity`` ``[time, y, x]``: the forecast in mm/h (NaN: no data in the newest
  input frame, outside radar coverage); ``time``: seconds after the newest input frame
  (units ``seconds since YYYY-MM-DD HH:MM:SS UTC``), one per lead;
- ``x``, ``y`` (projection coordinates of the pixel centres), ``lon``, ``lat`` and the CF
  grid mapping of the importer's projection (pysteps' conversion);
- ``input_precip_intensity`` ``[input_time, y, x]``: the input frames in mm/h (``input_time``
  in the same units, <= 0), and with ``--with_truth`` ``observed_precip_intensity``
  ``[time, y, x]``: the true future at the forecast's valid times;
- an ensemble (``members``): ``precip_intensity`` is ``[ens_number, time, y, x]`` (every
  member, pysteps' layout), ``precip_intensity_median`` and ``precip_intensity_mean``
  ``[time, y, x]`` beside it.
"""

from __future__ import annotations

import dataclasses
import datetime
import os

import numpy as np

from predrnn_tf.inference.radar_grid import Georeference, import_pysteps_quietly

NETCDF_FILENAME = "forecast.nc"


@dataclasses.dataclass(frozen=True)
class ForecastContext:
    """When and where a forecast lies (from the radar archive).

    Attributes:
      input_times: the UTC times of the input frames, oldest first.
      interval_minutes: time between frames (the model's).
      georeference: the frames' map coordinates, or None.
    """

    input_times: list[datetime.datetime]
    interval_minutes: float
    georeference: Georeference | None = None

    @property
    def issued(self) -> datetime.datetime:
        """The newest input frame's time: the forecast's reference time."""
        return self.input_times[-1]

    def lead_minutes(self, count: int) -> list[float]:
        """The leads of ``count`` forecast frames in minutes."""
        return [self.interval_minutes * (step + 1) for step in range(count)]


def _add_field(dataset, name: str, dimension: str, values: np.ndarray, long_name: str,
               grid_mapping: str | None) -> None:
    variable = dataset.createVariable(name, np.float32, (dimension, "y", "x"),
                                      compression="zlib")
    variable[:] = values
    variable.long_name = long_name
    variable.units = "mm h-1"
    variable.coordinates = "y x"
    if grid_mapping:
        variable.grid_mapping = grid_mapping


def write_netcdf(folder: str, predictions: np.ndarray, inputs: np.ndarray,
                 truth: np.ndarray | None, context: ForecastContext,
                 members: np.ndarray | None = None) -> str:
    """Writes ``folder/forecast.nc``; arrays are ``[T, H, W]`` in mm/h. Returns its path.

    ``members`` (``[N, T, H, W]`` mm/h, or None) makes it an ensemble file and
    ``predictions`` its median.

    Raises:
      ImportError: pysteps, netCDF4 or pyproj is missing.
      ValueError: no georeference.
    """
    if context.georeference is None:
        raise ValueError("the input files give no map coordinates")
    exporters = import_pysteps_quietly("pysteps.io.exporters")
    if not (exporters.NETCDF4_IMPORTED and exporters.PYPROJ_IMPORTED):
        raise ImportError("forecast.nc needs netCDF4 and pyproj (pip install netCDF4 pyproj)")
    start = context.issued
    exporter = exporters.initialize_forecast_exporter_netcdf(
        folder, os.path.splitext(NETCDF_FILENAME)[0], start, context.interval_minutes,
        int(predictions.shape[0]), tuple(predictions.shape[1:]),
        context.georeference.pysteps_metadata("mm/h"),
        n_ens_members=1 if members is None else int(members.shape[0]),
        institution="predrnn_tf (PredRNN-V2 nowcast)")
    dataset = exporter["ncfile"]
    dataset.title = "PredRNN-V2 nowcast"
    units = f"seconds since {start:%Y-%m-%d %H:%M:%S} UTC"
    exporter["var_time"].units = units
    dataset.createDimension("input_time", inputs.shape[0])
    input_time = dataset.createVariable("input_time", int, ("input_time",))
    input_time[:] = [round((moment - start).total_seconds()) for moment in context.input_times]
    input_time.units, input_time.long_name = units, "time of the input frames"
    grid_mapping = getattr(exporter["var_F"], "grid_mapping", None)
    _add_field(dataset, "input_precip_intensity", "input_time", inputs,
               "observed precipitation rate (model input)", grid_mapping)
    if truth is not None:
        _add_field(dataset, "observed_precip_intensity", "time", truth[:predictions.shape[0]],
                   "observed precipitation rate at the forecast's valid times", grid_mapping)
    if members is not None:
        _add_field(dataset, "precip_intensity_median", "time", predictions,
                   "ensemble median precipitation rate", grid_mapping)
        _add_field(dataset, "precip_intensity_mean", "time", members.mean(axis=0),
                   "ensemble mean precipitation rate", grid_mapping)
    exporters.export_forecast_dataset(predictions if members is None else members, exporter)
    exporters.close_forecast_files(exporter)
    return os.path.join(folder, NETCDF_FILENAME)

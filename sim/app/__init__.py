"""The browser app (``badia viz``): a scenario unfolding on the desert map, in Mesa's SolaraViz.

One job per module, each importing only those above it in this list:

- :mod:`sim.app.scenarios`: the bundled scenarios, the start scenario and the parameter sliders
  (:func:`~sim.app.scenarios.slider_specs`), each mapped to override paths of the scenario.
- :mod:`sim.app.model`: :class:`~sim.app.model.VizModel`, a DesertModel whose ``__init__`` takes
  only keyword arguments with defaults (SolaraViz rebuilds it on Reset as
  ``type(model)(**params)``), and its ``model_params``.
- :mod:`sim.app.views`: map regions, views that follow a unit, and viewpoints.
- :mod:`sim.app.style`: dpi, colours and markers shared by the figures; PNG output.
- :mod:`sim.app.status`: the clock, the status line and the latest events, as text.
- :mod:`sim.app.background`: a view's terrain, roads, places, zones and legend, drawn once,
  rasterised and cached per (terrain, view, light).
- :mod:`sim.app.map_frame`: one frame: the cached background as a pixel-exact ``figimage`` and
  the overlay on top (units, attacks, detections, recent events, the clock).
- :mod:`sim.app.plots`: the time series from the model's DataCollector.
- :mod:`sim.app.page`: the Solara components and the :func:`~sim.app.page.Page`.
- :mod:`sim.app.snapshot`: a frame to a PNG file (``python -m sim.app.snapshot``).
- :mod:`sim.app.serve`: ``badia viz`` (``solara run`` on that file, which loads the page).
- :mod:`sim.app.assets`: solara's front-end files cached locally (``make assets``).

This package's ``__init__`` imports nothing, so that ``badia`` can load :mod:`sim.app.serve`
for its arguments without loading solara or building a model.
"""

"""The browser app (``badia viz``): a scenario unfolding on the desert map (Solara, with Mesa's
parameter panel).

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
  rasterised and cached per view: as the browser's ground and feature layers and place names
  (``layers``), or as one image for a matplotlib frame (``background``).
- :mod:`sim.app.map_frame`: one frame's units, attacks, detections, recent events and names: the
  browser's SVG overlay (``overlay_svg``) or a matplotlib figure for PNG files (``map_figure``).
- :mod:`sim.app.plots`: the time series, appended hour by hour (``PlotPanel``) or as a figure.
- :mod:`sim.app.page`: the Solara components (map, plots, status, events, controls with a queue
  of steps run by one thread per session) and the :func:`~sim.app.page.Page`.
- :mod:`sim.app.snapshot`: a frame to a PNG file (``python -m sim.app.snapshot``).
- :mod:`sim.app.serve`: ``badia viz`` (``solara run`` on that file, which loads the page).
- :mod:`sim.app.assets`: solara's front-end files cached locally (``make assets``).

This package's ``__init__`` imports nothing, so that ``badia`` can load :mod:`sim.app.serve`
for its arguments without loading solara or building a model.
"""

"""Multi-touch attribution (issue 7): exact, pushed down to the warehouse.

Public API (import from the submodules; this package stays light because the CLI
imports it at ``triangulate --help`` time):

* :func:`triangulate.mta.engine.attribute_from_warehouse` -- the warehouse's journeys
  -> ``measurement.mta_channel_credit`` rows, campaign drill-down, conversion summary;
* :func:`triangulate.mta.engine.attribute_paths` -- ChannelAttribution-style
  aggregated paths -> credit per model and channel;
* :func:`triangulate.mta.engine.aggregated_paths_from_warehouse` -- journeys as
  aggregated paths (to compare with ChannelAttribution);
* :func:`triangulate.mta.paths.read_aggregated_paths` -- parse and validate the CSV.

Models: :mod:`triangulate.mta.registry` (each model module registers itself; a new model
is one new module); dispatch: :mod:`triangulate.mta.engine`; SQL and journey rules:
:mod:`triangulate.mta.sql`; aggregated paths and their integer encoding:
:mod:`triangulate.mta.paths`; heuristics on encoded paths:
:mod:`triangulate.mta.heuristics`; exact Markov: :mod:`triangulate.mta.markov`;
Shapley: :mod:`triangulate.mta.shapley`.
"""

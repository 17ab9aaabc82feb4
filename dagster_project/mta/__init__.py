"""Multi-touch attribution (issue 7): exact, pushed down to the warehouse.

Public API (import from the submodules; this package stays light because the CLI
imports it at ``triangulate --help`` time):

* :func:`dagster_project.mta.engine.attribute_from_warehouse` -- the warehouse's journeys
  -> ``measurement.mta_channel_credit`` rows, campaign drill-down, conversion summary;
* :func:`dagster_project.mta.engine.attribute_paths` -- ChannelAttribution-style
  aggregated paths -> credit per model and channel;
* :func:`dagster_project.mta.engine.aggregated_paths_from_warehouse` -- journeys as
  aggregated paths (to compare with ChannelAttribution);
* :func:`dagster_project.mta.paths.read_aggregated_paths` -- parse and validate the CSV.

Model definitions: :mod:`dagster_project.mta.engine`; SQL and journey rules:
:mod:`dagster_project.mta.sql`; aggregated paths and their integer encoding:
:mod:`dagster_project.mta.paths`; heuristics on encoded paths:
:mod:`dagster_project.mta.heuristics`; exact Markov: :mod:`dagster_project.mta.markov`;
Shapley: :mod:`dagster_project.mta.shapley`.
"""

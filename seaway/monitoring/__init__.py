"""Monitoring: what a served or batch-scored model was asked and answered, and whether that still
looks like its training data and is still right.

Layer 4 of the design (below serving and batch, above the runtime and the registry): the
prediction log's writer and reader, window summaries, drift statistics, feedback metrics,
performance estimation and alert rules. Pure statistics and rules: nothing here imports the server.
Heavy dependencies (pyarrow, scipy, Jinja2) come with the ``seaway[monitor]`` extra and are
imported where used.
"""

"""Figure builders: data frames in, plotly figures (and live deltas) out; no I/O."""

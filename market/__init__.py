"""Market data: the candle frame, validation, import, resampling, live feeds, bundled samples."""

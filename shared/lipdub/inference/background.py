"""A model that loads beside the analysis pass. The analysis (decode, faces) needs no
lip-sync model, so importing torch and loading Wav2Lip (about a second on a 2-core
machine) runs on a thread once the analysis has begun: imports hold Python's lock, so
started any earlier they would delay the first frame instead of overlapping the rest."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

# A Predictor, as lipdub.inference.local defines it (not imported: that module is torch).
PredictorFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


class BackgroundPredictor:
    """A Predictor whose model `load` builds on its own thread from `start()` on (the
    engine calls it as it studies the first face). A call waits for the model; a failed
    load raises there, or sooner at `start()` (called on every studied face: a bad
    checkpoint is reported at once, not when a film's analysis ends)."""

    def __init__(self, load: Callable[[], PredictorFn]) -> None:
        self._load = load
        self._future: Future[PredictorFn] | None = None

    def start(self) -> None:
        if self._future is None:
            pool = ThreadPoolExecutor(1, thread_name_prefix="lipdub-model-load")
            self._future = pool.submit(self._load)
            pool.shutdown(wait=False)  # the one task runs on; the thread ends after it
        elif self._future.done() and self._future.exception() is not None:
            self._future.result()

    def loaded(self) -> PredictorFn:
        self.start()
        assert self._future is not None
        return self._future.result()

    def __call__(self, mel: np.ndarray, faces: np.ndarray) -> np.ndarray:
        return self.loaded()(mel, faces)

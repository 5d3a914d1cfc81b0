"""Frames decoded on a thread of their own, a few ahead of the thread that uses them.

A dub's passes are bound by one Python thread each (the analysis pass's tracking, the
render's compositing and encoding); decoding and converting a frame to RGB (FFmpeg and
OpenCV, outside Python's lock) was a third of the analysis thread's time at 720p. Here it
overlaps with the rest (benchmarks/RESULTS.md)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_END = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(items: Iterator[T], depth: int = 4) -> Iterator[T]:
    """`items`, produced on a thread at most `depth` ahead. What the producer raises is
    raised here; closing this early stops the producer and closes `items`."""
    ready: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        ready.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(_END)
        except BaseException as exc:  # raised on the consumer's thread
            ready.put(_Failed(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a decoder's generator: its file closes on this thread

    producer = threading.Thread(target=produce, name="lipdub-read-ahead", daemon=True)
    producer.start()
    try:
        while (item := ready.get()) is not _END:
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        while producer.is_alive():  # unblock a producer waiting for room, then wait
            try:
                ready.get_nowait()
            except queue.Empty:
                producer.join(0.05)

"""Running the Ray Serve application: a local Ray instance (or an existing cluster, with
RAY_ADDRESS) serving the model repository over HTTP until SIGTERM. `lipdub models
serve-ray` runs this; so do the tests, as a subprocess."""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import threading
from pathlib import Path

# Before ray is imported: no usage reporting from a studio's machines, and the loopback
# address stays the node's address (else Ray picks the external interface).
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def serve_forever(repository: Path, host: str = "127.0.0.1", port: int = 8100,
                  resident: int = 8, upload_dir: Path | None = None,
                  on_ready=None) -> None:  # noqa: ANN001 - a callable
    import ray
    import torch
    from ray import serve

    from lipdub_model_server.ray_app import application

    upload_dir = upload_dir or Path(tempfile.mkdtemp(prefix="lipdub-ray-models-"))
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"])
    else:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False,
                 object_store_memory=256 << 20, _node_ip_address="127.0.0.1",
                 _temp_dir=tempfile.mkdtemp(prefix="lipdub-ray-"), log_to_driver=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": host, "port": port})
        serve.run(application(repository, upload_dir, resident, torch.cuda.is_available()),
                  name="lipdub", route_prefix="/")
        if on_ready is not None:
            on_ready()
        stop.wait()
    finally:
        serve.shutdown()
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repository", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--resident", type=int, default=8)
    args = parser.parse_args()
    serve_forever(args.repository.resolve(), args.host, args.port, args.resident,
                  on_ready=lambda: print("ready", flush=True))


if __name__ == "__main__":
    main()

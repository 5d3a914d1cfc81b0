"""The Ray Serve alternative to Triton, for teams that run Ray or KubeRay: the same models
(the torch.export programs of the model repository, and identity restorers uploaded by the
workers), batched the same way, behind a small HTTP protocol the `ray+http://` client
speaks:

  GET  /v2/health/ready                     200 once the replica serves
  PUT  /v2/models/{name}/{version}/{file}   a model file (an identity restorer's program)
  POST /v2/models/{name}/infer              inputs as .npz (by tensor name) -> outputs .npz
       with the header `serve_multiplexed_model_id: {name}`

Models load on first use (Ray Serve model multiplexing: requests for a model go to the
replica that has it; at most `resident` per replica, the least recently used unloaded
first). Concurrent requests for a model are merged into one forward pass (`serve.batch`),
like Triton's dynamic batcher. Arrays travel as .npz read with allow_pickle=False."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import numpy as np
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lipdub.inference.contract import PROGRAM_FILE
from lipdub_model_server.ray_protocol import (
    MODEL_HEADER,
    OUTPUT,
    READY_PATH,
    decode_arrays,
    encode_arrays,
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")  # model and file names
MAX_FILE_BYTES = 512 << 20
ROUTE = re.compile(r"^/v2/models/(?P<name>[^/]+)(?:/(?P<version>\d+)/(?P<file>[^/]+)|/infer)$")


class ModelMissing(Exception):
    pass


class LipDubModels:
    def __init__(self, repository: str, upload_dir: str) -> None:
        import torch

        self.folders = [Path(repository), Path(upload_dir)]  # repository models first
        self.upload_dir = Path(upload_dir)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"

    async def _load(self, name: str):  # noqa: ANN202 - a torch module
        import torch
        from torch.export.passes import move_to_device_pass  # a submodule

        for folder in self.folders:
            path = folder / name / "1" / PROGRAM_FILE
            if path.is_file():
                program = await asyncio.to_thread(torch.export.load, str(path))
                if self.device != "cpu":
                    program = move_to_device_pass(program, self.device)
                return program.module()
        raise ModelMissing(name)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)
    async def _run(self, requests: list[dict[str, np.ndarray]]) -> list[np.ndarray | str]:
        """The requests of a batch (all for one model: batches are split by model) in one
        forward pass per shape: a malformed request fails alone, with its reason."""
        model = await self._load(serve.get_multiplexed_model_id())
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(tuple((n, a.shape[1:], a.dtype.str) for n, a in r.items()),
                              []).append(i)
        answers: list[np.ndarray | str] = [""] * len(requests)
        for members in groups.values():
            names = list(requests[members[0]])
            batch = [np.concatenate([requests[i][n] for i in members]) for n in names]
            try:
                out = await asyncio.to_thread(self._forward, model, batch)
            except Exception as exc:  # noqa: BLE001 - the model refused these inputs
                for i in members:
                    answers[i] = f"{type(exc).__name__}: {exc}"
                continue
            start = 0
            for i in members:
                size = len(requests[i][names[0]])
                answers[i], start = out[start:start + size], start + size
        return answers

    def _forward(self, model, batch: list[np.ndarray]) -> np.ndarray:  # noqa: ANN001
        import torch

        gpu = self.device != "cpu"
        tensors = [torch.from_numpy(a).to(self.device) for a in batch]
        with torch.inference_mode(), torch.autocast("cuda", torch.float16, enabled=gpu):
            return model(*tensors).float().cpu().numpy()

    async def __call__(self, request: Request) -> Response:
        path = request.url.path
        if path == READY_PATH:
            return JSONResponse({"ready": True})
        route = ROUTE.match(path)
        if route is None or not _NAME.match(route["name"]):
            return _problem(404, f"No route {path}.")
        if route["file"] is not None and request.method == "PUT":
            return await self._upload(request, route["name"], route["version"], route["file"])
        if route["file"] is None and request.method == "POST":
            return await self._infer(request, route["name"])
        return _problem(405, f"{request.method} is not served on {path}.")

    async def _upload(self, request: Request, name: str, version: str, file: str) -> Response:
        if not _NAME.match(file) or int(version) < 1:
            return _problem(400, "Bad model file name or version.")
        data = await request.body()
        if len(data) > MAX_FILE_BYTES:
            return _problem(413, f"A model file is at most {MAX_FILE_BYTES} bytes.")
        target = self.upload_dir / name / version / file
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{file}.partial-{id(request)}")
        partial.write_bytes(data)
        partial.replace(target)  # atomic: a replica never loads half a file
        return JSONResponse({"stored": f"{name}/{version}/{file}"}, status_code=201)

    async def _infer(self, request: Request, name: str) -> Response:
        if request.headers.get(MODEL_HEADER) != name:
            return _problem(400, f"Send the header {MODEL_HEADER}: {name}.")
        try:
            inputs = decode_arrays(await request.body())
        except (ValueError, OSError) as exc:
            return _problem(400, f"The body is not an .npz of arrays: {exc}.")
        if not inputs or any(a.ndim < 1 for a in inputs.values()) or len(
                {len(a) for a in inputs.values()}) != 1:
            return _problem(400, "Send batched arrays (one batch size for all).")
        try:
            answer = await self._run(inputs)
        except ModelMissing:
            return _problem(404, f"Unknown model '{name}': upload its files first.")
        if isinstance(answer, str):
            return _problem(400, f"The model refused the inputs: {answer}.")
        return Response(encode_arrays({OUTPUT: answer}),
                        media_type="application/octet-stream")


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def application(repository: Path, upload_dir: Path, resident: int, gpu: bool):  # noqa: ANN201
    """The Ray Serve application (an Application for serve.run). The multiplexing bound
    is fixed when a method is decorated, so the deployment class is made here."""

    class Models(LipDubModels):
        @serve.multiplexed(max_num_models_per_replica=resident)
        async def _load(self, name: str):  # noqa: ANN202 - a torch module
            return await super()._load(name)

    options = {"num_gpus": 1} if gpu else {"num_cpus": 1}
    deployment = serve.deployment(Models, name="LipDubModels", max_ongoing_requests=64)
    return deployment.options(ray_actor_options=options).bind(str(repository),
                                                              str(upload_dir))

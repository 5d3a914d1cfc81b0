"""Triton python-based backend `lipdub_torch`: runs the exported torch program
(torch.export, `<model>/<version>/model.pt2`) of any LipDub model: the Wav2Lip generator in
the repository, and identity restorers (SOVQAE) that workers load on demand with their
weights in the load request. One piece of server code for every torch model: a model's
config names this backend; its folder holds only weights (never committed).

Install: this folder as `<backends>/lipdub_torch/` beside Triton's `python/` backend (the
containerless server does it itself; containers mount it). Every request of a dynamic
batch runs in one forward pass. Inputs and outputs are FP32; a GPU instance computes in
FP16 (autocast)."""

import json
from pathlib import Path

import numpy as np
import torch
import triton_python_backend_utils as pb_utils
from torch.export.passes import move_to_device_pass  # a submodule: not loaded by torch.export

PROGRAM = "model.pt2"  # lipdub.inference.contract.PROGRAM_FILE


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        self.inputs = [i["name"] for i in config["input"]]
        self.output = config["output"][0]["name"]
        path = Path(args["model_repository"]) / args["model_version"] / PROGRAM
        if not path.is_file():
            raise pb_utils.TritonModelException(
                f"{path} is missing: export the model first (`lipdub models export` with "
                "the operator's Wav2Lip checkpoint).")
        self.gpu = args["model_instance_kind"] == "GPU"
        self.device = f"cuda:{args['model_instance_device_id']}" if self.gpu else "cpu"
        program = torch.export.load(str(path))
        if self.gpu:
            program = move_to_device_pass(program, self.device)
        self.model = program.module()

    def execute(self, requests: list) -> list:
        arrays = [[pb_utils.get_input_tensor_by_name(r, name).as_numpy() for name in self.inputs]
                  for r in requests]
        sizes = [a[0].shape[0] for a in arrays]
        batch = [torch.from_numpy(np.concatenate([a[i] for a in arrays])).to(self.device)
                 for i in range(len(self.inputs))]
        with torch.inference_mode(), torch.autocast("cuda", torch.float16, enabled=self.gpu):
            out = self.model(*batch).float().cpu().numpy()
        answers, start = [], 0
        for size in sizes:
            tensor = pb_utils.Tensor(self.output, out[start:start + size])
            answers.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
            start += size
        return answers

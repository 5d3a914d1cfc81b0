"""Triton python backend: the Wav2Lip generator as exported by `lipdub models export`
(torch.export program, BatchNorm folded, beside this file as wav2lip.pt2; weights are never
committed).

Every request of a dynamic batch is run in one forward pass. Inputs and outputs are FP32;
on a GPU instance the network computes in FP16 (autocast)."""

import json
from pathlib import Path

import numpy as np
import torch
import triton_python_backend_utils as pb_utils

WEIGHTS = "wav2lip.pt2"


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        self.inputs = [i["name"] for i in config["input"]]
        self.output = config["output"][0]["name"]
        folder = Path(args["model_repository"]) / args["model_version"]
        path = folder / WEIGHTS
        if not path.is_file():
            raise pb_utils.TritonModelException(
                f"{path} is missing: run `lipdub models export` with the operator's "
                "Wav2Lip checkpoint first.")
        self.gpu = args["model_instance_kind"] == "GPU"
        self.device = f"cuda:{args['model_instance_device_id']}" if self.gpu else "cpu"
        program = torch.export.load(str(path))
        if self.gpu:
            program = torch.export.passes.move_to_device_pass(program, self.device)
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

# The GPU model server: NVIDIA's Triton container (onnxruntime and TensorRT backends, the
# python backend) plus the torch that reads LipDub's exported programs and LipDub's
# python-based backend. The model repository is mounted at /models, never baked in (it
# holds the operator's weights).
#   docker build -f infra/docker/triton.Dockerfile -t lipdub-triton .
# The torch pin must match the workers' (the programs are written by `lipdub models export`
# with torch 2.13.0: an older torch cannot read them).
FROM nvcr.io/nvidia/tritonserver:25.01-py3

RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cu128 \
        torch==2.13.0 \
    && pip install --no-cache-dir numpy==1.26.4
COPY services/model_server/lipdub_model_server/triton_backends/lipdub_torch/model.py \
     /opt/tritonserver/backends/lipdub_torch/model.py
EXPOSE 8000 8001 8002
CMD ["tritonserver", "--model-repository=/models", "--model-control-mode=explicit", \
     "--load-model=wav2lip", "--strict-readiness=true"]

"""The model server (Triton, containerless) and the inference clients of the workers."""

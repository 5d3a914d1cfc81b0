"""Where model forward passes run: in-process PyTorch here; Triton and Ray adapters plug in
behind the same `Predictor` call signature."""

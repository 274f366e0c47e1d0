"""JetGPT (Butter, Huetsch et al., "Jet Diffusion versus JetGPT"): an autoregressive
transformer over the components of Z(->mu mu)+jets events, Gaussian-mixture conditionals,
KV-cache sampling, and its Bayesian version. See docs/jetgpt.md."""

from hepgen.models.events.jetgpt.checkpoint import load_checkpoint, save_checkpoint
from hepgen.models.events.jetgpt.config import JetGPTConfig
from hepgen.models.events.jetgpt.model import JetGPT
from hepgen.models.events.jetgpt.sample import SampleInfo, sample_events, sample_vectors, sort_by_pt
from hepgen.models.events.jetgpt.train import TrainResult, mean_nll, train_jetgpt

__all__ = ["JetGPT", "JetGPTConfig", "SampleInfo", "TrainResult", "load_checkpoint", "mean_nll", "sample_events",
           "sample_vectors", "save_checkpoint", "sort_by_pt", "train_jetgpt"]

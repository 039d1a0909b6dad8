"""Model execution: architecture configs, weights, the Model class."""

from .arch import SUPPORTED_ARCHS, ArchConfig, arch_config
from .model import Model

__all__ = ["SUPPORTED_ARCHS", "ArchConfig", "Model", "arch_config"]

"""Layer 1, checkpoint files: safetensors headers checked before any tensor is read, memory-mapped tensors,
torch pickles loaded with ``weights_only`` only, file hashes and the links a checkpoint may not follow.

May import: ``core``.
"""

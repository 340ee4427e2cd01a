"""voxgate engine: everything that touches torch.

Audio decoding and resampling, log-mel features, the sentencepiece tokenizer,
streaming acoustic models with explicit state, decoders, endpointing, model
artifacts (bundles) and the base-model training recipe. Never imports sockets,
``server`` or ``protocol``.
"""

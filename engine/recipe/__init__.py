"""The base-model training recipe: corpus, tokenizer, training, evaluation, export.

Run end to end with ``scripts/train-base-models.sh``; every step is also a
module with its own ``python -m engine.recipe.<step>`` entry point.
"""

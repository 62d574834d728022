"""LLM Building Blocks: the course package.

One module per concept family (not per lecture), because lectures revisit ideas:

- ``runtime``       device choice, seeding
- ``data``          the generated, seeded "tiny world" and the course's own text
- ``tokenization``  byte-level BPE, character and word tokenizers
- ``attention``     softmax, scaled dot-product attention, masks, multi-head attention
- ``models``        a tiny decoder-only transformer with a typed config
- ``training``      one training loop with a progress bar that returns its history
- ``lora``          LoRA, NF4 and int8 quantization, QLoRA
- ``autograd``      a scalar autograd engine, the chain rule made visible
- ``sizing``        real model sizes: parameters, memory, the KV cache, serving time, training compute
- ``ngram``         n-gram language models (Laplace, Kneser–Ney)
- ``plotting``      figures; every function takes ``ax=`` and returns it
- ``widgets``       thin ipywidgets wrappers over tested compute functions
- ``checks``        the exercise checker used by the "Your turn" cells
- ``authoring``     writes ``lectures/`` from ``solutions/``
- ``slides``        offline reveal.js decks of the lectures (``make slides``)
"""

__version__ = "0.1.0"

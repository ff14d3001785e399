"""Built-in ELECTRA architectures, as plain data.

Configurations only (random initialisation); the sizes are those of the
ELECTRA paper (Clark et al., 2020, Table 6). Loading lives in
`keras_electra.utils.preset_loading`.
"""

PRESETS = {
    "electra_tiny": {
        "description": "A 2-layer, 32-wide ELECTRA for tests and demos.",
        "backbone": {
            "vocab_size": 30522,
            "num_layers": 2,
            "num_heads": 2,
            "hidden_dim": 32,
            "embedding_dim": 16,
            "intermediate_dim": 64,
            "max_sequence_length": 128,
        },
        "pretrainer": {"generator_size": 0.5, "mask_rate": 0.15},
    },
    "electra_demo": {
        "description": "The demo's model: 2 layers, 128 hidden, 2 heads, "
        "64 tokens (ELECTRA-Small is 12 x 256, 512 tokens); the generator "
        "at 1/4 width, as in the paper.",
        "backbone": {
            "vocab_size": 8000,
            "num_layers": 2,
            "num_heads": 2,
            "hidden_dim": 128,
            "embedding_dim": 128,
            "intermediate_dim": 512,
            "max_sequence_length": 64,
        },
        "pretrainer": {"generator_size": 0.25, "mask_rate": 0.15},
    },
    "electra_small": {
        "description": "ELECTRA-Small: 12 layers, 256 hidden, 4 heads.",
        "backbone": {
            "vocab_size": 30522,
            "num_layers": 12,
            "num_heads": 4,
            "hidden_dim": 256,
            "embedding_dim": 128,
            "intermediate_dim": 1024,
            "max_sequence_length": 512,
        },
        "pretrainer": {"generator_size": 0.25, "mask_rate": 0.15},
    },
    "electra_base": {
        "description": "ELECTRA-Base: 12 layers, 768 hidden, 12 heads.",
        "backbone": {
            "vocab_size": 30522,
            "num_layers": 12,
            "num_heads": 12,
            "hidden_dim": 768,
            "embedding_dim": 768,
            "intermediate_dim": 3072,
            "max_sequence_length": 512,
        },
        "pretrainer": {"generator_size": 1 / 3, "mask_rate": 0.15},
    },
    "electra_large": {
        "description": "ELECTRA-Large: 24 layers, 1024 hidden, 16 heads.",
        "backbone": {
            "vocab_size": 30522,
            "num_layers": 24,
            "num_heads": 16,
            "hidden_dim": 1024,
            "embedding_dim": 1024,
            "intermediate_dim": 4096,
            "max_sequence_length": 512,
        },
        "pretrainer": {"generator_size": 0.25, "mask_rate": 0.25},
    },
}

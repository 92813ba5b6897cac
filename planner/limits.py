"""Bounds on every number a user can give kvplan, in one place.

Each bound is a physical or practical limit with wide room above anything real (the
largest real value is named beside it), so a legitimate input never meets one, while a
typo or a hostile file (``num_hidden_layers: 1e9``, ``replicas: 2**31``, ``cv: 1e10``) is
refused at the edge with one line instead of running for minutes or overflowing.
Inputs are validated against these by the pydantic schema (``planner.schema``), the
Hugging Face import, the trace readers and the command line; the README's "Input
bounds" table lists them.

Arithmetic stays exact or float64 up to these caps: token counts up to 2^40 and the
products the model forms from them (bytes, FLOPs) are computed in float64 where an int64
could overflow (a causal prefill of L tokens visits about L^2 / 2 pairs: 2^79 at the cap).
"""

from __future__ import annotations

from planner.units import MAX_TOKEN_COUNT

# ---------------------------------------------------------------- model architecture
# Largest real values (Hugging Face configs, 2024-2026): 126 layers (Llama-3.1-405B),
# hidden 16,384 and intermediate 53,248 (Llama-3.1-405B), 128 heads (DeepSeek-V3), head
# dim 512 (DeepSeek-V4 entries), 384 routed experts (Kimi K2), vocabulary 262,144 (Gemma 3),
# 10M context (Llama 4 Scout), kv_lora_rank 512 / q_lora_rank 1,536 (DeepSeek-V3).
MAX_LAYERS = 1_024
MAX_HIDDEN_SIZE = 131_072
MAX_INTERMEDIATE_SIZE = 1_048_576
MAX_HEADS = 4_096
MAX_HEAD_DIM = 8_192
MAX_RANK = 131_072  # q/kv/o LoRA ranks
MAX_EXPERTS = 16_384
MAX_VOCAB_SIZE = 16_777_216
MAX_CONTEXT_TOKENS = MAX_TOKEN_COUNT  # max_position_embeddings, windows, top-k
MAX_COMPRESS_RATIO = 65_536  # V4: 4 (CSA) and 128 (HCA)
MAX_MTP_MODULES = 64  # DeepSeek-V3/V4: 1
MAX_HC_MULT = 64  # V4 mHC streams: 4
MAX_PAD_BYTES = 4_096  # per cached entry (V4: 1)
MAX_COMPRESSOR_OVERLAP = 64  # V4 CSA: 2
MAX_PARAMS = 1e16  # published parameter counts (the largest public model: ~2e12)

# ---------------------------------------------------------------- hardware profiles
# Largest real values (vendor datasheets, 2024-2026): 288 GB HBM and 8 TB/s (B300),
# dense FP4 ~10,000 TFLOP/s per GPU (B300), 1,800 GB/s NVLink 5 per GPU, 1,400 W.
MAX_HBM_GIB = 65_536.0
MAX_HBM_BANDWIDTH_TB_PER_S = 1_000.0
MAX_PEAK_TFLOP_PER_S = 1_000_000.0
MAX_LINK_GB_PER_S = 1_000_000.0
MAX_POWER_WATTS = 100_000.0
MAX_USD_PER_GPU_HOUR = 10_000.0
MAX_KERNEL_OVERHEAD_US = (
    100_000.0  # 0.1 s per kernel (measured: a few µs; the efficiency fits cap theirs here too)
)
MAX_DEVICES_PER_PACKAGE = 64

# ---------------------------------------------------------------- deployment
# Real: DeepSeek serves V3 decode on 144-320 GPUs per instance; vLLM's max_num_seqs and
# max_num_batched_tokens defaults are 256-1,024 and 2,048-16,384; block sizes 16-512.
MAX_GPUS_PER_REPLICA = 4_096
MAX_BLOCK_TOKENS = 65_536
MAX_BATCHED_TOKENS = 1_048_576  # also sizes the step-time tables (one entry per token)
MAX_NUM_SEQS = 1_048_576
MAX_RUNTIME_RESERVE_GIB = MAX_HBM_GIB
MAX_STEP_OVERHEAD_MS = 60_000.0
# A fitted step-time correction (kvplan calibrate --from-bench) outside 0.1x-10x is a
# different deployment, not a correction.
MIN_STEP_TIME_SCALE = 0.1
MAX_STEP_TIME_SCALE = 10.0
# Any number read from an engine's start-up log (GiB, tokens, blocks, concurrency): real
# ones are below 10^7 (a 1M-token pool, 141 GiB); past this the line is corrupt.
MAX_LOG_NUMBER = float(MAX_TOKEN_COUNT)
# A calibrated GPU profile's curves as JSON (a real one is ~10 KB).
MAX_CALIBRATION_JSON_CHARS = 1_000_000
# Chunks of max_batched_tokens one prefill may take in the planner (a 1M-token prompt at the
# smallest common budget, 2,048, takes 512).
MAX_PREFILL_CHUNKS = 65_536

# ---------------------------------------------------------------- simulation
SECONDS_PER_YEAR = 365 * 86_400
MAX_DURATION_S = float(SECONDS_PER_YEAR)  # duration_s, drain_s, fault and cut-over times
MAX_RATE_PER_S = 1_000_000.0  # requests per second, any arrival process
# Open-loop arrivals a synthetic scenario may ask for (mean rate x duration), and follow-up
# turns of multi-turn sessions one run may generate: each request is a Python object with
# its prefix keys, so this bounds memory to a few GB at most.
MAX_EXPECTED_ARRIVALS = 2_000_000
MAX_FOLLOW_UP_TURNS = 2_000_000
# Prefix-cache block keys one synthetic run may build (sum over requests of the blocks
# their prompts span): about 40 bytes each in memory.
MAX_PREFIX_BLOCKS = 50_000_000
MAX_REPLICAS = 4_096
# Simulator engines (replicas x attention-DP groups): each is a SimPy process with its own
# block pool.
MAX_ENGINES = 65_536
MAX_GAMMA_CV = 100.0  # shape 1/cv^2 >= 1e-4; measured bursty traces: cv 1-10
MIN_GAMMA_CV = 0.01  # shape <= 1e4: gaps within 1% of the mean (cv -> 0 is periodic)
MAX_LOGNORMAL_SIGMA = 5.0
MAX_SLO_S = 86_400.0
MAX_SYSTEM_PROMPT_VARIANTS = 1_000_000
MAX_CLASSES = 1_000
MAX_LIST_ITEMS = 100_000  # faults, cut-over times, piecewise rate points
MAX_TIME_SCALE = 1_000_000.0
MAX_HOST_TIER_GIB = 1_048_576.0  # 1 PiB
# Time-series samples of one run: the sampler widens its interval to keep under this
# (and sleeps while the cluster is idle, so idle simulated time costs nothing).
MAX_TIME_SERIES_SAMPLES = 100_000
MAX_SEED = 2**63 - 1

# ---------------------------------------------------------------- command line
MAX_FRONTIER_POINTS = 10_000
MAX_CACHE_CURVE_POINTS = 1_000
MAX_TPOT_SLO_MS = MAX_SLO_S * 1e3

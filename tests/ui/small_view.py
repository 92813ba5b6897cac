"""A view small enough to plan and simulate in seconds, shared by the dashboard tests:
V4-Flash on 4 x H200 at 6 requests/s of 4K-token prompts and 256-token answers, no
reasoning, TPOT SLO 50 ms, TTFT SLO 1 s (the plan sizes it at 2 replicas)."""

SMALL_VIEW = {
    "models": "deepseek-v4-flash",
    "gpus": "h200",
    "n": "4",
    "rps": "6",
    "in": "4096",
    "ans": "256",
    "mix": "100,0,0",
    "slo": "50",
    "ttft": "1",
}

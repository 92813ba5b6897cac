"""The dashboard's shared state: the sidebar, the URL and the session.

Pages call :func:`current_config` for the :class:`~planner.report.views.ViewConfig` the
sidebar describes (``app.py`` draws the sidebar before it runs the page). Every input is
bounded: widgets have minimum and maximum values, and a link's parameters are validated.

URL parameters. A link carries every sidebar setting; on the first run of a session the
widgets start from it. Each parameter is validated on its own: a bad value is ignored with
one warning line in the sidebar naming the parameter, the value and what was expected
(never an exception). After every run the sidebar rewrites its own parameters (and only
those) from the widgets.

==========  ==========================  ===================================================
parameter   sidebar widget              values
==========  ==========================  ===================================================
models      Models                      comma-separated catalog names
uploaded    (none)                      labels of uploaded models a link cannot carry
gpus        GPU profiles                comma-separated profile names
n           GPUs per replica            one of GPU_COUNT_OPTIONS
tp          Attention TP                auto, or a divisor of n
ep          Expert parallel             auto, or a divisor of n
engine      Serving engine              vllm, sglang, trtllm
kv          KV cache dtype              model default, bf16, fp8
ctx         Context length              one of CONTEXT_OPTIONS (4K ... 1M)
rps         Requests per second         RATE_RANGE
in          Mean prompt tokens          TOKEN_RANGE
ans         Mean answer tokens          TOKEN_RANGE
mix         Reasoning-mode mix (%)      three integers 0-100 (non-think, think-high,
                                        think-max), not all 0
hit         Prefix cache hit ratio (%)  HIT_RANGE
slo         TPOT SLO (ms)               TPOT_RANGE_MS
ttft        TTFT SLO (s)                TTFT_RANGE_S
ttftp       TTFT percentile             one of TTFT_PERCENTILES (the SLO holds at it)
price       $/GPU-hour (Cost page)      comma-separated gpu:usd, usd in PRICE_RANGE
==========  ==========================  ===================================================

Session-state keys: ``view_config`` (the current ViewConfig), ``w_*`` (sidebar widgets,
e.g. ``w_models``, ``w_mix_think-high``), ``_prices`` (GPU -> the user's $/GPU-hour, set
by :func:`price_input` on the Cost page), ``custom_models`` (label ->
stored config.json path), ``custom_uploads_seen`` (upload id -> label),
``_url_problems`` (the link's warnings), ``_sidebar_values`` (a copy of the widget
values, restored after a page switch), ``sim_view_request`` (a ViewConfig the
"Simulate this view" button hands to the Simulate page), ``sim_*`` (the Simulate page).

For page authors: read the view with ``current_config()``; give page-specific link
parameters a prefix of the page's name (``mig_phase``), read them with :func:`page_param`
(validated with a parser such as :func:`one_of` or :func:`number_in`; one warning line,
never an exception) and write them with :func:`write_page_params`; the sidebar leaves keys
it does not own alone. The Simulate page's own parameters: ``sim_src`` (view, example,
upload), ``sim_ex`` (an example's file name), ``sim_mode`` (fast, exact), ``sim_seed``,
``sim_for`` (seconds of arrivals, 0 = as in the scenario).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

import streamlit as st

from planner.engines import engine_names
from planner.errors import KvplanError
from planner.hardware import gpu_names, load_gpu
from planner.model.catalog import catalog_names
from planner.report.view_export import export_bundle
from planner.report.views import REASONING_MODES, ViewConfig, screen_text
from planner.ui.calibration import calibration_caption, calibration_uploader
from planner.ui.common import page_rows
from planner.ui.uploads import DEFAULT_LABEL, LABEL_MAX_CHARS, add_config_upload
from planner.units import format_tokens, parse_token_count

T = TypeVar("T")
CONTEXT_OPTIONS = [2**k for k in range(12, 21)]  # 4K .. 1M tokens
GPU_COUNT_OPTIONS = [1, 2, 4, 8, 16, 32, 64]
KV_OPTIONS = ["model default", "bf16", "fp8"]
ENGINE_OPTIONS: list[str] = engine_names()  # engines/*.yaml
RATE_RANGE = (0.01, 10_000.0)  # requests per second
TOKEN_RANGE = (1, 2**20)  # tokens per prompt or answer (the largest catalog context)
HIT_RANGE = (0, 99)  # % of prompt tokens found in the prefix cache
TPOT_RANGE_MS = (1.0, 10_000.0)
TTFT_RANGE_S = (0.01, 3_600.0)
TTFT_PERCENTILES = [50, 90, 95, 99]
PRICE_RANGE = (0.01, 1_000.0)  # USD per GPU-hour
DEFAULTS = ViewConfig()
CONFIG_KEY = "view_config"
SIDEBAR_VALUES_KEY = "_sidebar_values"  # a copy of the w_* values, restored after a switch
PRICES_KEY = "_prices"  # GPU profile -> the user's $/GPU-hour (Cost page inputs, link)
SIM_VIEW_REQUEST_KEY = "sim_view_request"
SIMULATE_PAGE = "planner/ui/pages/simulate.py"


# --------------------------------------------------------------------------- parsing
def _in_range(value: float, bounds: tuple[float, float], what: str) -> float:
    low, high = bounds
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{what} from {low:g} to {high:g}")
    return value


def _number(text: str, bounds: tuple[float, float], what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} from {bounds[0]:g} to {bounds[1]:g}") from None
    return _in_range(value, bounds, what)


def _integer(text: str, bounds: tuple[int, int], what: str) -> int:
    try:
        value = parse_token_count(text, field=what)
    except KvplanError:
        raise ValueError(f"{what} from {bounds[0]:,} to {bounds[1]:,}") from None
    return int(_in_range(value, (bounds[0], bounds[1]), what))


def _choice(text: str, options: list[Any], what: str) -> Any:
    for option in options:
        if text == str(option):
            return option
    raise ValueError(f"{what}: one of {', '.join(str(o) for o in options)}")


def _context(text: str) -> int:
    try:
        value = parse_token_count(text)
    except KvplanError:
        value = -1
    if value not in CONTEXT_OPTIONS:
        raise ValueError("one of " + ", ".join(format_tokens(c) for c in CONTEXT_OPTIONS))
    return value


def _mix(text: str) -> list[int]:
    parts = text.split(",")
    expected = "three percentages 0-100 (non-think, think-high, think-max), not all 0"
    if len(parts) != len(REASONING_MODES):
        raise ValueError(expected)
    try:
        shares = [int(p) for p in parts]
    except ValueError:
        raise ValueError(expected) from None
    if any(not 0 <= s <= 100 for s in shares) or sum(shares) == 0:
        raise ValueError(expected)
    return shares


def _prices(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    expected = f"gpu:usd pairs, usd from {PRICE_RANGE[0]:g} to {PRICE_RANGE[1]:g}"
    for item in text.split(","):
        gpu, _, usd = item.partition(":")
        if gpu not in gpu_names():
            raise ValueError(f"{expected}; unknown GPU {_short(gpu)}")
        out[gpu] = _number(usd, PRICE_RANGE, "usd")
    return out


def _short(value: str) -> str:
    """A URL value as shown in a warning: at most 40 characters."""
    return repr(value if len(value) <= 40 else value[:37] + "...")


# --------------------------------------------------------------------------- the link
@dataclass(frozen=True)
class Param:
    key: str  # URL parameter
    parse: Callable[[str], Any]  # raises ValueError(expected)


def _params() -> list[Param]:
    return [
        Param("n", lambda t: _choice(t, GPU_COUNT_OPTIONS, "GPUs per replica")),
        Param("engine", lambda t: _choice(t, ENGINE_OPTIONS, "serving engine")),
        Param("kv", lambda t: _choice(t, KV_OPTIONS, "KV cache dtype")),
        Param("ctx", _context),
        Param("rps", lambda t: _number(t, RATE_RANGE, "requests per second")),
        Param("in", lambda t: _integer(t, TOKEN_RANGE, "prompt tokens")),
        Param("ans", lambda t: _integer(t, TOKEN_RANGE, "answer tokens")),
        Param("hit", lambda t: _integer(t, HIT_RANGE, "percent")),
        Param("slo", lambda t: _number(t, TPOT_RANGE_MS, "milliseconds")),
        Param("ttft", lambda t: _number(t, TTFT_RANGE_S, "seconds")),
        Param("ttftp", lambda t: _choice(t, TTFT_PERCENTILES, "TTFT percentile")),
    ]


def _widget_seed() -> dict[str, Any]:
    """Every sidebar widget's starting value (session-state key -> value)."""
    seed: dict[str, Any] = {
        "w_models": list(DEFAULTS.models),
        "w_gpus": list(DEFAULTS.gpus),
        "w_n": DEFAULTS.gpus_per_replica,
        "w_tp": "auto",
        "w_ep": "auto",
        "w_engine": DEFAULTS.engine,
        "w_kv": KV_OPTIONS[0],
        "w_ctx": DEFAULTS.context_tokens,
        "w_rps": DEFAULTS.requests_per_s,
        "w_in": DEFAULTS.input_tokens,
        "w_ans": DEFAULTS.answer_tokens,
        "w_hit": round(100 * DEFAULTS.prefix_hit_ratio),
        "w_slo": DEFAULTS.tpot_slo_ms,
        "w_ttft": DEFAULTS.ttft_slo_s,
        "w_ttftp": round(100 * DEFAULTS.ttft_percentile),
    }
    for mode, share in zip(REASONING_MODES, DEFAULTS.reasoning_mix, strict=True):
        seed[f"w_mix_{mode}"] = round(100 * share)
    return seed


def url_state(query: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Widget values from a link's parameters (defaults where absent or invalid) and one
    warning line per problem, each naming its parameter. Never raises."""
    state = _widget_seed()
    problems: list[str] = []

    def bad(key: str, expected: str) -> None:
        problems.append(f"link parameter {key}={_short(query[key])} ignored: expected {expected}")

    for key, options in (("models", catalog_names()), ("gpus", gpu_names())):
        if key in query:
            values = [v for v in query[key].split(",") if v]
            unknown = [v for v in values if v not in options]
            if unknown:
                problems.append(
                    f"link parameter {key}: unknown {', '.join(_short(v) for v in unknown[:5])} "
                    "ignored"
                )
            good = list(dict.fromkeys(v for v in values if v in options))
            if good:
                state[f"w_{key}"] = good
    for param in _params():
        if param.key in query:
            try:
                state[f"w_{param.key}"] = param.parse(query[param.key])
            except ValueError as err:
                bad(param.key, str(err))
    n = state["w_n"]
    for key in ("tp", "ep"):
        if key in query:
            choices: list[Any] = ["auto", *_divisors(n)]
            try:
                state[f"w_{key}"] = _choice(query[key], choices, f"a divisor of n={n}")
            except ValueError as err:
                bad(key, str(err))
    if "mix" in query:
        try:
            for mode, share in zip(REASONING_MODES, _mix(query["mix"]), strict=True):
                state[f"w_mix_{mode}"] = share
        except ValueError as err:
            bad("mix", str(err))
    if "price" in query:
        try:
            state[PRICES_KEY] = _prices(query["price"])
        except ValueError as err:
            bad("price", str(err))
    if query.get("uploaded"):
        labels = ", ".join(_short(v) for v in query["uploaded"].split(",")[:5])
        problems.append(
            f"link parameter uploaded: the shared view included uploaded model(s) {labels}, "
            "which a link cannot carry; add them under 'Add a model from config.json'"
        )
    return state, problems


def link_params(config: ViewConfig, widgets: dict[str, Any]) -> dict[str, str]:
    """The sidebar's own URL parameters for a view (every setting, defaults included)."""
    customs = dict(config.custom_models)
    params = {
        "models": ",".join(m for m in config.models if m not in customs),
        "gpus": ",".join(config.gpus),
        "n": str(config.gpus_per_replica),
        "tp": str(widgets["w_tp"]),
        "ep": str(widgets["w_ep"]),
        "engine": config.engine,
        "kv": str(widgets["w_kv"]),
        "ctx": format_tokens(config.context_tokens),
        "rps": f"{config.requests_per_s:g}",
        "in": str(config.input_tokens),
        "ans": str(config.answer_tokens),
        "mix": ",".join(str(widgets[f"w_mix_{m}"]) for m in REASONING_MODES),
        "hit": str(widgets["w_hit"]),
        "slo": f"{config.tpot_slo_ms:g}",
        "ttft": f"{config.ttft_slo_s:g}",
        "ttftp": str(widgets["w_ttftp"]),
    }
    if config.gpu_prices:
        params["price"] = ",".join(f"{g}:{usd:g}" for g, usd in config.gpu_prices)
    uploaded = [m for m in config.models if m in customs]
    if uploaded:
        params["uploaded"] = ",".join(uploaded)
    return params


SIDEBAR_PARAMS = (
    *("models", "uploaded", "gpus", "n", "tp", "ep", "engine", "kv", "ctx", "rps"),
    *("in", "ans", "mix", "hit", "slo", "ttft", "ttftp", "price"),
)


def _write_url(params: dict[str, str]) -> None:
    qp = st.query_params
    for key in SIDEBAR_PARAMS:
        if key in params:
            if qp.get(key) != params[key]:
                qp[key] = params[key]
        elif key in qp:
            del qp[key]


def page_param(key: str, parse: Callable[[str], T], default: T) -> T:
    """A page's own link parameter, parsed by ``parse`` (which raises ValueError with the
    expected values); the default, with one warning line naming the parameter, when the
    value is invalid. Never raises."""
    if key not in st.query_params:
        return default
    text = st.query_params[key]
    try:
        return parse(text)
    except (ValueError, KvplanError) as err:
        st.warning(f"link parameter {key}={_short(text)} ignored: expected {err}")
        return default


def write_page_params(params: dict[str, str]) -> None:
    """Write a page's own link parameters (prefixed by the page's name); others untouched."""
    for key, value in params.items():
        if st.query_params.get(key) != value:
            st.query_params[key] = value


def one_of(options: list[Any], what: str) -> Callable[[str], Any]:
    """A parser for :func:`page_param`: the option whose text is the value."""
    return lambda text: _choice(text, options, what)


def number_in(bounds: tuple[float, float], what: str) -> Callable[[str], float]:
    """A parser for :func:`page_param`: a finite number within ``bounds``."""
    return lambda text: _number(text, bounds, what)


# --------------------------------------------------------------------------- sidebar
def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _plural(count: float, noun: str) -> str:
    return f"{count:,.0f} {noun}{'' if round(count) == 1 else 's'}"


def _bounded_number(
    target: Any, label: str, bounds: tuple[float, float], step: float, key: str, **kw: Any
) -> Any:
    """A number input that cannot leave ``bounds`` (every number widget of the sidebar)."""
    return target.number_input(
        label, min_value=bounds[0], max_value=bounds[1], step=step, key=key, **kw
    )


def _custom_model_uploader() -> tuple[tuple[str, str], ...]:
    """A Hugging Face config.json upload, validated, stored under a generated name (the
    name typed here is only a label) and kept for the session."""
    customs: dict[str, str] = st.session_state.setdefault("custom_models", {})
    added: dict[str, str] = st.session_state.setdefault("custom_uploads_seen", {})
    with st.sidebar.expander("Add a model from config.json"):
        name = st.text_input(
            "Name for it",
            value=DEFAULT_LABEL,
            max_chars=LABEL_MAX_CHARS,
            key="w_custom_name",
            help="a label only; a second model under the same name gets ' (2)'",
        )
        upload = st.file_uploader("Hugging Face config.json", type=["json"], key="w_upload_cfg")
        if upload is not None:
            if upload.file_id in added:
                st.success(f"{added[upload.file_id]} added: pick it under Models")
            else:
                try:
                    label = add_config_upload(
                        upload.getvalue(), name, upload.name, customs, set(catalog_names())
                    )
                    added[upload.file_id] = label
                    st.success(f"{label} added: pick it under Models")
                except KvplanError as err:
                    st.error(screen_text(err))
    return tuple(sorted(customs.items()))


def _reasoning_caption(config: ViewConfig) -> str:
    default = "/".join(str(round(100 * s)) for s in DEFAULTS.reasoning_mix)
    return (
        f"Default mix {default} (kvplan's assumption). On average the mix adds "
        f"{config.reasoning_output_tokens:,.0f} reasoning tokens to each answer and "
        f"{config.reasoning_prompt_tokens:,.0f} system-prompt tokens to each prompt: the "
        f"pages plan for {config.mean_input_tokens:,} prompt + "
        f"{config.mean_output_tokens:,} output tokens per request. Set non-think to 100 "
        "for the typed counts alone."
    )


def _set_price(gpu: str) -> None:
    st.session_state.setdefault(PRICES_KEY, {})[gpu] = st.session_state[f"price_{gpu}"]


def price_input(gpu: str, container: Any = None) -> float:
    """An editable $/GPU-hour for one GPU profile (the Cost page shows one per GPU of the
    view). The value lives in session state (``_prices``), so every page and the link use
    it; it starts at the profile's estimate."""
    target = container if container is not None else st
    profile_price = load_gpu(gpu).price_usd_per_hour
    prices: dict[str, float] = st.session_state.setdefault(PRICES_KEY, {})
    st.session_state[f"price_{gpu}"] = float(prices.get(gpu, profile_price))
    value = _bounded_number(
        target,
        f"$/GPU-hour for {gpu}",
        PRICE_RANGE,
        0.1,
        f"price_{gpu}",
        format="%.2f",
        on_change=_set_price,
        args=(gpu,),
        help=f"the profile's estimate is ${profile_price:.2f} "
        f"({load_gpu(gpu).profile.price.as_of}); type what you pay",
    )
    return float(value)


def _chosen_prices(gpus: list[str]) -> tuple[tuple[str, float], ...]:
    """The user's prices that differ from the profile estimates, for the chosen GPUs."""
    prices: dict[str, float] = st.session_state.get(PRICES_KEY, {})
    return tuple(
        (gpu, round(float(prices[gpu]), 4))
        for gpu in gpus
        if gpu in prices and abs(prices[gpu] - load_gpu(gpu).price_usd_per_hour) > 1e-9
    )


def sidebar() -> ViewConfig:
    """Draw the sidebar and return the configuration it describes."""
    state = st.session_state
    if not state.get("_url_loaded"):
        seed, problems = url_state({k: st.query_params[k] for k in st.query_params})
        for key, value in seed.items():
            state[key] = value
        state["_url_problems"] = problems
        state["_url_loaded"] = True
    # Widget values survive a page switch: Streamlit drops the state of widgets a run did not
    # finish drawing (st.switch_page ends the run), so restore any that went missing.
    for key, value in state.get(SIDEBAR_VALUES_KEY, {}).items():
        if key not in state:
            state[key] = value
    for problem in state.get("_url_problems", []):
        st.sidebar.warning(problem)
    sb = st.sidebar
    sb.header("Configuration")
    customs = _custom_model_uploader()
    calibration = calibration_uploader()
    model_options = catalog_names() + [n for n, _ in customs]
    models = sb.multiselect("Models", model_options, key="w_models")
    gpus = sb.multiselect("GPU profiles", gpu_names(), key="w_gpus")
    n = sb.selectbox("GPUs per replica", GPU_COUNT_OPTIONS, key="w_n")
    for key in ("w_tp", "w_ep"):  # a size that no longer divides the GPU count resets
        if state.get(key) not in ["auto", *_divisors(n)]:
            state[key] = "auto"
    col1, col2 = sb.columns(2)
    tp = col1.selectbox(
        "Attention TP",
        ["auto", *_divisors(n)],
        key="w_tp",
        help="tensor-parallel size of attention; GPUs / TP = data-parallel "
        "attention groups (auto: each model's best layout from a deployment search "
        "around the GPUs per replica, for the traffic and SLOs below)",
    )
    ep = col2.selectbox(
        "Expert parallel",
        ["auto", *_divisors(n)],
        key="w_ep",
        help="expert-parallel size (auto: EP = GPUs per replica)",
    )
    engine = sb.selectbox(
        "Serving engine",
        ENGINE_OPTIONS,
        key="w_engine",
        help="cache layout, memory admission and defaults of this engine (engines/*.yaml)",
    )
    kv = sb.selectbox(
        "KV cache dtype",
        KV_OPTIONS,
        key="w_kv",
        help="model default = the engine's default cache (Compare keeps the model's "
        "reference serving stack)",
    )
    ctx = sb.select_slider(
        "Context length (tokens)", CONTEXT_OPTIONS, format_func=format_tokens, key="w_ctx"
    )
    with sb.expander("Traffic", expanded=True):
        rps = _bounded_number(st, "Requests per second", RATE_RANGE, 1.0, "w_rps")
        input_tokens = _bounded_number(st, "Mean prompt tokens", TOKEN_RANGE, 512, "w_in")
        answer = _bounded_number(
            st, "Mean answer tokens (without reasoning)", TOKEN_RANGE, 64, "w_ans"
        )
        st.caption("Reasoning-mode mix (%)")
        shares = [st.slider(mode, 0, 100, key=f"w_mix_{mode}") for mode in REASONING_MODES]
        mix_caption = st.empty()
        hit = st.slider(
            "Prefix cache hit ratio (%)",
            HIT_RANGE[0],
            HIT_RANGE[1],
            key="w_hit",
            help="share of prompt tokens found in the prefix cache (prefill skips them; "
            "APIs bill them at the cached-input price)",
        )
        slo = _bounded_number(
            st,
            "TPOT SLO (ms)",
            TPOT_RANGE_MS,
            5.0,
            "w_slo",
            help="time per output token the replica count is sized for",
        )
        c1, c2 = st.columns(2)
        ttft = _bounded_number(
            c1,
            "TTFT SLO (s)",
            TTFT_RANGE_S,
            0.5,
            "w_ttft",
            help="time to first token; replicas are sized so it holds at the percentile",
        )
        ttftp = c2.selectbox(
            "at percentile",
            TTFT_PERCENTILES,
            key="w_ttftp",
            format_func=lambda p: f"p{p}",
            help="the share of requests the TTFT SLO must hold for",
        )
    if not models:
        sb.error("Pick at least one model")
        models = list(DEFAULTS.models)
    if not gpus:
        sb.error("Pick at least one GPU profile")
        gpus = list(DEFAULTS.gpus)
    if sum(shares) == 0:
        sb.error("The reasoning-mode mix needs at least one share above 0 %")
        shares = [round(100 * s) for s in DEFAULTS.reasoning_mix]
    config = ViewConfig(
        models=tuple(models),
        gpus=tuple(gpus),
        gpus_per_replica=int(str(n)),
        tensor_parallel=None if tp == "auto" else int(str(tp)),
        expert_parallel=None if ep == "auto" else int(str(ep)),
        engine=engine,  # type: ignore[arg-type]  # one of ENGINE_OPTIONS
        kv_dtype=None if kv == "model default" else kv,
        context_tokens=int(ctx),
        requests_per_s=float(rps),
        input_tokens=int(input_tokens),
        answer_tokens=int(answer),
        reasoning_mix=tuple(s / sum(shares) for s in shares),  # type: ignore[arg-type]
        prefix_hit_ratio=hit / 100,
        tpot_slo_ms=float(slo),
        ttft_slo_s=float(ttft),
        ttft_percentile=int(str(ttftp)) / 100,
        gpu_prices=_chosen_prices(list(gpus)),
        custom_models=tuple((m, p) for m, p in customs if m in models),
        gpu_calibration=calibration,
    )
    mix_caption.caption(_reasoning_caption(config))
    widgets = {k: state[k] for k in state if str(k).startswith("w_")}
    state[SIDEBAR_VALUES_KEY] = {
        k: v
        for k, v in widgets.items()
        if k not in ("w_upload_cfg", "w_custom_name", "w_upload_gpu_profile")
    }
    params = link_params(config, widgets)
    _write_url(params)
    uploaded = [m for m in config.models if m in dict(config.custom_models)]
    if uploaded:
        sb.warning(
            f"A link cannot carry uploaded model(s) {', '.join(uploaded)}: whoever opens it "
            "sees only their names and must add the config.json again"
        )
    if calibration is not None:
        sb.warning(
            "A link cannot carry the uploaded calibrated profile: whoever opens it sees the "
            "engine's fitted curves until they upload it again"
        )
        st.caption(calibration_caption(config))  # top of every page's main area
    _export_buttons(config, "?" + urlencode(params))
    state[CONFIG_KEY] = config
    return config


def _export_buttons(config: ViewConfig, query: str) -> None:
    def bundle() -> bytes:
        return export_bundle(config, page_rows("cost", config), query).data

    st.sidebar.download_button(
        "Download this view as scenarios (zip)",
        bundle,
        file_name="kvplan-view.zip",
        mime="application/zip",
        key="export_view",
        help="one scenario YAML per model and GPU, with the planned replica counts; run "
        "one with: kvplan simulate kvplan-view/<file>.yaml",
    )
    if st.sidebar.button(
        "Simulate this view",
        key="simulate_view",
        help="run every model x GPU of the view in the simulator with its planned replicas",
    ):
        st.session_state[SIM_VIEW_REQUEST_KEY] = config
        st.switch_page(SIMULATE_PAGE)


def current_config() -> ViewConfig:
    config = st.session_state.get(CONFIG_KEY, DEFAULTS)
    assert isinstance(config, ViewConfig)
    return config

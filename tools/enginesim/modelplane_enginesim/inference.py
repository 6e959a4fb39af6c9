"""What every inference API shares: the parsed request, its outcome, and API errors (pure).

An API module turns a JSON body into a `Plan` (or raises `ApiError` naming the
field), and renders an `Outcome` as its own JSON body or event stream.
Guarantees: `decide` applies the context limit the way vLLM does (prompt plus
`max_tokens` must fit `max_model_len`, a missing `max_tokens` means "up to the
limit"), and each choice's answer is the deterministic text of its prompt, cut
at `max_tokens` (finish `length`) or at the prompt's natural length (`stop`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from modelplane_enginesim import generation


class ApiError(Exception):
    """A request the engine refuses: HTTP status, message, and the field at fault."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param


@dataclass(frozen=True, slots=True)
class Prompt:
    text: str
    tokens: int


@dataclass(frozen=True, slots=True)
class Plan:
    """A parsed inference request, whatever API it came through."""

    model: str | None
    prompts: tuple[Prompt, ...]
    max_tokens: int | None
    stream: bool = False
    include_usage: bool = False
    ignore_eos: bool = False
    leading_space: bool = False

    @property
    def prompt_tokens(self) -> int:
        return sum(p.tokens for p in self.prompts)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the engine answers to a plan: one choice per prompt."""

    id: str
    created: int
    model: str
    prompt_tokens: int
    seeds: tuple[int, ...]
    lengths: tuple[int, ...]
    finish: tuple[str, ...]
    leading_space: bool

    @property
    def completion_tokens(self) -> int:
        return sum(self.lengths)

    def token(self, choice: int, step: int) -> str:
        return generation.token_text(self.seeds[choice], step, self.leading_space)

    def text(self, choice: int) -> str:
        return generation.answer_text(self.seeds[choice], self.lengths[choice], self.leading_space)

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


def decide(
    plan: Plan,
    model: str,
    max_model_len: int,
    *,
    outcome_id: str,
    created: int,
    single_token: bool = False,
) -> Outcome:
    """Each choice's length and finish reason; `single_token` is a prefill-only request."""
    lengths: list[int] = []
    finish: list[str] = []
    for prompt in plan.prompts:
        budget = max_model_len - prompt.tokens
        if plan.max_tokens is not None and plan.max_tokens > budget:
            raise ApiError(
                400,
                f"This model's maximum context length is {max_model_len} tokens. However, "
                f"you requested {prompt.tokens + plan.max_tokens} tokens ({prompt.tokens} in "
                f"the messages, {plan.max_tokens} in the completion). Please reduce the length "
                "of the messages or completion.",
                "max_tokens",
            )
        if budget < 1:
            raise ApiError(
                400,
                f"The prompt is {prompt.tokens} tokens long, which leaves no room to generate "
                f"within the maximum context length of {max_model_len} tokens.",
                "prompt",
            )
        limit = budget if plan.max_tokens is None else plan.max_tokens
        if single_token:
            limit = 1
        natural = generation.natural_length(generation.seed_of(prompt.text))
        length = limit if plan.ignore_eos else min(limit, natural)
        lengths.append(length)
        finish.append("length" if length == limit else "stop")
    return Outcome(
        id=outcome_id,
        created=created,
        model=model,
        prompt_tokens=plan.prompt_tokens,
        seeds=tuple(generation.seed_of(p.text) for p in plan.prompts),
        lengths=tuple(lengths),
        finish=tuple(finish),
        leading_space=plan.leading_space,
    )


class StreamFormat(Protocol):
    """How an API writes an outcome as a stream of server-sent events."""

    def opening(self) -> bytes: ...

    def step(self, step: int) -> bytes: ...

    def closing(self) -> bytes: ...


class Api(Protocol):
    """One inference API: parsing, bodies, streams and error shapes."""

    def parse(self, body: Mapping[str, Any]) -> Plan: ...

    def body(self, outcome: Outcome) -> dict[str, Any]: ...

    def stream(self, outcome: Outcome, include_usage: bool) -> StreamFormat: ...

    def error(self, error: ApiError) -> dict[str, Any]: ...


def sse(data: str, event: str | None = None) -> bytes:
    """One server-sent event."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


# Field readers shared by the API parsers: each names the field it rejects.


def field_str(body: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"{name}: field required", name)
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{name}: must be a string", name)
    return value


def field_int(
    body: Mapping[str, Any], name: str, *, required: bool = False, minimum: int = 1
) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"{name}: field required", name)
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{name}: must be an integer", name)
    if value < minimum:
        raise ApiError(400, f"{name}: must be at least {minimum}", name)
    return int(value)


def field_bool(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ApiError(400, f"{name}: must be true or false", name)
    return value


def check_n(body: Mapping[str, Any]) -> None:
    n = field_int(body, "n")
    if n is not None and n != 1:
        raise ApiError(400, "n: the simulator generates one choice per prompt (n must be 1)", "n")

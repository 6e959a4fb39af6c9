"""The engine simulator: serves what a vLLM or SGLang engine serves, without a GPU.

One process per simulated pod, bound to the pod's IP: OpenAI completions and
chat, Anthropic messages, `/v1/models`, `/health`, vLLM's `/metrics`, plus
`/v1/group` for LeaderWorkerSet gangs and vLLM's prefill/decode hand-off
(`kv_transfer_params`, side channel) simulated. Every response names the pod
(`X-Modelplane-Pod`, `X-Modelplane-Pod-IP`). Stdlib and httptools only, so it starts
in about a tenth of a second and idles in under 20 MB.

Modules, pure ones marked (no I/O, no clock unless injected):
    cli            flags and their environment defaults -> `config.Settings`
    config         (pure) the frozen settings and the pod identity
    generation     (pure) deterministic words, word-count tokenizer, natural lengths
    inference      (pure) the parsed request (`Plan`), its `Outcome`, `ApiError`
    openai_api     (pure) completions and chat: parsing, bodies, SSE chunks, errors
    anthropic_api  (pure) messages: parsing, body, SSE events, errors
    metrics        (pure) vLLM's Prometheus families, written by hand
    kvtransfer     (pure) `kv_transfer_params` and the producer's block store
    prefixcache    (pure) the LRU of prompt block hashes behind the time to first token
    engine         concurrency slots and the ttft/tpot latency model
    (HTTP/1.1 server: modelplane.httpserver, asyncio streams + httptools)
    serving        one inference request: checks, KV fetch, engine time, rendering
    sidechannel    the KV side channel: producer's TCP server, consumer's fetch
    group          leader/worker membership over TCP
    server         routes, readiness, start-up and SIGTERM
"""

"""The prefill/decode router: one per PrefillDecode replica, in front of its engine pods.

OpenAI-shaped requests are prefilled on a prefill pod chosen by prompt-prefix
affinity, then decoded on the least-loaded decode pod with the prefill's
`kv_transfer_params` (vLLM's NIXL hand-off); every other request goes to a
decode pod unchanged. See the README beside this package.
"""

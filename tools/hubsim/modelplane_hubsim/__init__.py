"""A test double of the Hugging Face Hub: serves model repositories from a directory.

It answers the requests the real `huggingface_hub` client makes to download a model
(`HfApi.model_info`, `list_repo_tree`, `hf_hub_download`, `snapshot_download`, `hf
download`), so tests, benchmarks and the local fleet fetch weights without the
internet. It is not a Hub: no uploads, no accounts, no Xet storage.

Modules:
    repos   (no network) the directory layout: repositories, revisions, files, commits
    server  the HTTP server (stdlib `http.server`, `sendfile` for file bodies)
    seed    writes repositories: a synthetic model, `.hub.json` (gated, tokens, branches)

See tools/hubsim/README.md for the directory layout and the endpoints.
"""

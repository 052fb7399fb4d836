"""Gateway keys kept in the config file, for people who keep everything in one file:

    general_settings:
      virtual_keys:
        - name: image-job                 # or LiteLLM's key_alias
          key: os.environ/IMAGE_JOB_KEY   # the key itself (at least 16 characters)
          models: [gemini-image]
          rpm: 10                          # or rpm_limit; tpm / tpm_limit, rpd, max_parallel / max_parallel_requests
          budget: 2/day                    # or max_budget: 2 + budget_duration: 1d
          timezone: Europe/Berlin          # when day / week / month budgets reset (default UTC)

Here only the shape is read (a list of mappings, `key` resolved from the environment); each field is checked
by keymux/clients/model.py when the gateway is assembled, with the same messages as the admin API.
"""

from __future__ import annotations

from typing import Any

from keymux.config.fields import Fields, join_path

CLIENT_KEYS = frozenset(("virtual_keys",))


def virtual_keys(gs: dict[Any, Any], f: Fields) -> tuple[dict[str, Any], ...]:
    items = gs.get("virtual_keys")
    if items is None:
        return ()
    path = join_path("general_settings", "virtual_keys")
    if not isinstance(items, list):
        raise f.error(path, "a list of gateway keys (mappings with name, key, models, rpm, budget, ...)", items)
    out = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        spec = dict(f.mapping(item, where))
        if "key" not in spec:
            raise f.error(join_path(where, "key"), "the gateway key (a string, or os.environ/VAR)")
        spec["key"] = f.string(spec["key"], join_path(where, "key"), secret=True, what="a key string")
        out.append(spec)
    return tuple(out)
